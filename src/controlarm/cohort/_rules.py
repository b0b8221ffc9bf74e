"""Condition intervals: when does a hospitalization meet an index rule's condition?

A condition (``[index.pool]``) has up to three parts: a location (adt ``location_category`` in a
set), a respiratory device in force (``device_category`` in a set, by the shared holding rule of
``_intervals``) and a medication given within a window (``[admin, admin + window)``). Each part
becomes a set of intervals per hospitalization; each set is merged into maximal intervals (gaps and
islands); the condition holds on the intersection of the merged sets, computed as the pieces
``[greatest(starts), least(ends))`` of every combination of one island per part. Because every
part's islands are disjoint and do not touch, the pieces are disjoint and do not touch either, so
they are the maximal intervals of the condition.

The first time the condition holds is the earliest piece's start; the risk-set room's eligibility
intervals are the pieces themselves.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._intervals import device_intervals_sql, hours_us, merge_intervals_sql, sql_list, sql_str, us_interval

if TYPE_CHECKING:
    from ..spec import PoolIndexRule

__all__ = ["condition_sql", "rule_text"]


def _parts(rule: "PoolIndexRule", gap_hours: float, *, medication: bool) -> list[tuple[str, str]]:
    parts: list[tuple[str, str]] = []
    if rule.devices:
        parts.append(("c_dev", f"""
            SELECT hospitalization_id, start_dttm AS s, end_dttm AS e FROM ({device_intervals_sql(gap_hours)}) d
            WHERE device_category IN {sql_list(rule.devices)}"""))
    if rule.locations:
        parts.append(("c_loc", f"""
            SELECT hospitalization_id, in_dttm AS s, out_dttm AS e FROM adt
            WHERE location_category IN {sql_list(rule.locations)}"""))
    if medication and rule.medications:
        meds = "(" + ", ".join(f"lower({sql_str(m)})" for m in rule.medications) + ")"
        window = us_interval(hours_us(rule.medication_window_hours))
        parts.append(("c_med", f"""
            SELECT hospitalization_id, admin_dttm AS s, admin_dttm + {window} AS e
            FROM medication_admin_intermittent WHERE lower(med_category) IN {meds}"""))
    return parts


def condition_sql(rule: "PoolIndexRule", gap_hours: float, *, medication: bool = True) -> str | None:
    """Maximal intervals on which ``rule`` holds: ``SELECT hospitalization_id, s, e`` (timestamps).

    ``medication=False`` leaves the medication part out (used to tell "never in the state" from
    "in the state, but never on the drug"). Returns None when no part is left.
    """
    parts = _parts(rule, gap_hours, medication=medication)
    if not parts:
        return None
    # CTE names differ between the two variants: a query may hold both, and Spark (through sqlglot)
    # hoists nested CTEs to the top, where equal names collide.
    if not medication:
        parts = [("b" + name[1:], sql) for name, sql in parts]
    ctes = [f"{name}_raw AS ({sql})" for name, sql in parts]
    ctes += [f"{name} AS ({merge_intervals_sql(name + '_raw')})" for name, _ in parts]
    names = [name for name, _ in parts]
    first = names[0]
    if len(names) == 1:
        body = f"SELECT hospitalization_id, s, e FROM {first}"
    else:
        starts = ", ".join(f"{n}.s" for n in names)
        ends = ", ".join(f"{n}.e" for n in names)
        joins = " ".join(f"JOIN {n} ON {n}.hospitalization_id = {first}.hospitalization_id" for n in names[1:])
        body = (f"SELECT hospitalization_id, s, e FROM (SELECT {first}.hospitalization_id, greatest({starts}) AS s, "
                f"least({ends}) AS e FROM {first} {joins}) x WHERE s < e")
    return f"WITH {', '.join(ctes)} {body}"


def rule_text(rule: "PoolIndexRule") -> str:
    """The condition without its medication part, in words ("on High Flow NC/IMV in icu")."""
    parts = []
    if rule.devices:
        parts.append("on " + "/".join(rule.devices))
    if rule.locations:
        parts.append("in " + "/".join(rule.locations))
    return " ".join(parts) or "the index rule"
