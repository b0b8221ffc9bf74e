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

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ._intervals import device_intervals_sql, hours_us, merge_intervals_sql, sql_list, sql_str, us_interval

if TYPE_CHECKING:
    from ..spec import PoolIndexRule

__all__ = ["ConditionPart", "condition_parts", "condition_sql", "intersection_sql", "rule_text"]


@dataclass(frozen=True)
class ConditionPart:
    """One part of a condition: ``sql`` gives its merged islands (``hospitalization_id, s, e``)."""

    name: str
    sql: str
    medication: bool


def condition_parts(rule: "PoolIndexRule", gap_hours: float) -> list[ConditionPart]:
    """The condition's parts (device, location, medication), each as the SQL of its merged islands.

    The device part is computed only for the stays with at least one record of the rule's devices:
    any other stay has no interval of those devices, so it can never meet the condition, and the
    holding window (a sort of every respiratory record) runs on a fraction of the warehouse. The cut
    is by stay, so a kept stay's intervals are exactly those of the uncut rule.
    """
    parts: list[ConditionPart] = []
    if rule.devices:
        only = f"SELECT hospitalization_id FROM respiratory_support WHERE device_category IN {sql_list(rule.devices)}"
        parts.append(ConditionPart("dev", merge_intervals_sql(f"""(
            SELECT hospitalization_id, start_dttm AS s, end_dttm AS e FROM ({device_intervals_sql(gap_hours, only)}) d
            WHERE device_category IN {sql_list(rule.devices)}) dev_raw"""), medication=False))
    if rule.locations:
        parts.append(ConditionPart("loc", merge_intervals_sql(f"""(
            SELECT hospitalization_id, in_dttm AS s, out_dttm AS e FROM adt
            WHERE location_category IN {sql_list(rule.locations)}) loc_raw"""), medication=False))
    if rule.medications:
        meds = "(" + ", ".join(f"lower({sql_str(m)})" for m in rule.medications) + ")"
        window = us_interval(hours_us(rule.medication_window_hours))
        parts.append(ConditionPart("med", merge_intervals_sql(f"""(
            SELECT hospitalization_id, admin_dttm AS s, admin_dttm + {window} AS e
            FROM medication_admin_intermittent WHERE lower(med_category) IN {meds}) med_raw"""), medication=True))
    return parts


def intersection_sql(relations: list[str]) -> str:
    """``SELECT hospitalization_id, s, e``: where every relation's islands overlap (see the module
    docstring). ``relations`` are table names or parenthesised subqueries (aliased here)."""
    names = [f"p{i}" for i in range(len(relations))]
    if len(relations) == 1:
        return f"SELECT hospitalization_id, s, e FROM {relations[0]} AS p0"
    first = names[0]
    froms = f"{relations[0]} AS {first} " + " ".join(
        f"JOIN {rel} AS {n} ON {n}.hospitalization_id = {first}.hospitalization_id"
        for rel, n in zip(relations[1:], names[1:]))
    starts = ", ".join(f"{n}.s" for n in names)
    ends = ", ".join(f"{n}.e" for n in names)
    return (f"SELECT hospitalization_id, s, e FROM (SELECT {first}.hospitalization_id, greatest({starts}) AS s, "
            f"least({ends}) AS e FROM {froms}) x WHERE s < e")


def condition_sql(rule: "PoolIndexRule", gap_hours: float) -> str | None:
    """Maximal intervals on which ``rule`` holds: ``SELECT hospitalization_id, s, e`` (timestamps).

    One self-contained query (the risk-set eligibility intervals); the cohort room instead
    materialises the parts once (:func:`condition_parts`) and intersects them twice, with and
    without the drug. Returns None when the rule has no part.
    """
    parts = condition_parts(rule, gap_hours)
    if not parts:
        return None
    return intersection_sql([f"({p.sql})" for p in parts])


def rule_text(rule: "PoolIndexRule") -> str:
    """The condition without its medication part, in words ("on High Flow NC/IMV in icu")."""
    parts = []
    if rule.devices:
        parts.append("on " + "/".join(rule.devices))
    if rule.locations:
        parts.append("in " + "/".join(rule.locations))
    return " ".join(parts) or "the index rule"
