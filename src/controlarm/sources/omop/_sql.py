"""OMOP CDM v5.4 -> CLIF: one portable SELECT per CLIF table.

Room: ``sources`` (OMOP adapter). Every statement reads the OMOP tables under their CDM names
(``person``, ``visit_occurrence``, ...) and the concept map registered as ``_omop_concept_map``
(columns of ``concepts.csv``). The SQL is written in the DuckDB dialect with constructs that
``sqlglot.transpile(sql, read="duckdb", write="postgres" | "spark")`` translates faithfully (joins,
CASE, COALESCE, CAST, window functions, UNION [ALL], ``||``, ANSI intervals, ``DATE_DIFF``); a test
transpiles every statement with ``unsupported_level=RAISE``.

Decisions (docs/omop.md says the same for users):

* **Ids.** ``patient_id`` = ``person_source_value``, else ``CAST(person_id AS VARCHAR)``;
  ``hospitalization_id`` = ``visit_source_value``, else the visit id. A round trip through
  :func:`~controlarm.sources.omop.export_omop` keeps the original ids.
* **Hospitalizations** are visit_occurrence rows whose ``visit_concept_id`` is listed under
  ``hospitalization.visit_concept_id`` (9201 inpatient, 262 ER + inpatient). Event rows link by
  ``visit_occurrence_id``; a row without one is attached to the person's hospitalization whose
  [admission, discharge] holds its start time.
* **Times** are OMOP ``TIMESTAMP`` read as UTC (the connection's time zone must be UTC: DuckDB
  ``SET TimeZone='UTC'``, PostgreSQL ``SET TIME ZONE 'UTC'``, Spark
  ``spark.sql.session.timeZone=UTC``). A missing datetime falls back to the date at 00:00; a
  missing *end* datetime to the end of the end date (next day 00:00); a death date without a time
  to 23:59:59 of that day (never before an event recorded that day).
* **Respiratory support and ECMO** are intervals in OMOP (device_exposure or procedure_occurrence,
  start and end) and events in CLIF (a record holds until the next record of the hospitalization,
  at most ``max_gap_hours``, never past discharge). An interval [s, e) becomes: a record at s; if
  it lasts longer than the gap, records every gap after s and a last one at e - gap, so the state
  holds exactly to e; if it is shorter than the gap, ends before discharge and no other exposure
  of the hospitalization is running at e or starts at e, a ``Room Air`` record at e (device_name
  ``(end of device exposure)``) stops it. An exposure without an end (or ending at its start) is
  one record, held by the CLIF rule. ECMO has no "off" record in CLIF (a non-ECMO row does not stop
  an ECMO state), so an ECMO exposure shorter than the gap and not followed holds up to the gap:
  :func:`mapping_report_sql` counts them. Overlapping exposures cannot be represented (CLIF holds
  one device at a time: the latest record wins); they are counted too.
* **Respiratory settings.** FiO2 (3150-0), oxygen flow (3151-8) and PEEP (20077-4) measurements
  go onto the record of an exposure starting at the same time in the same hospitalization (FiO2
  above 1 is a percentage and is divided by 100); others are counted.
* **Labs.** ``reference_unit`` = the unit concept's CLIF spelling, else ``unit_source_value``;
  ``FEU``/``DDU`` is taken from ``unit_source_value`` when it says so, else from the measurement
  concept (48065-7 is FEU, 48066-5 is DDU), and appended when the unit does not already say it.
* **Medications.** ``drug_concept_id`` matches a mapped ingredient directly or through
  ``concept_ancestor`` (clinical drugs roll up to their ingredient; an absent concept_ancestor is
  an empty table). Dose from ``quantity``, unit from ``dose_unit_source_value``.
* **Diagnoses.** ``diagnosis_code`` = ``condition_source_value`` (ICD-10-CM expected), else the
  mapped CLIF value of the condition concept; primary / present-on-admission from
  ``condition_status_concept_id``.
* Unmapped concepts are never silently dropped: :func:`mapping_report_sql` counts them by concept.
"""

from __future__ import annotations

from .._schema import DISCHARGE_CATEGORIES

def sql_str(value: str) -> str:
    """A SQL string literal (single quotes doubled)."""
    return "'" + str(value).replace("'", "''") + "'"


def sql_list(values) -> str:
    return "(" + ", ".join(sql_str(v) for v in values) + ")"


def hours_us(hours: float) -> int:
    """Whole microseconds in ``hours`` (the same rounding as ``cohort._intervals.hours_us``)."""
    return int(round(float(hours) * 3600e6))

__all__ = ["CLIF_VIEW_TABLES", "clif_views_sql", "mapping_report_sql"]

#: CLIF tables the adapter derives from OMOP (the trial tables pass through under their names).
CLIF_VIEW_TABLES = ("patient", "hospitalization", "adt", "vitals", "labs", "respiratory_support",
                    "medication_admin_intermittent", "ecmo_mcs", "hospital_diagnosis")

_MAP = "_omop_concept_map"
_TZ = "TIMESTAMP WITH TIME ZONE"


def _ts(dt: str, d: str) -> str:
    return f"COALESCE(CAST({dt} AS {_TZ}), CAST({d} AS {_TZ}))"


def _ts_end(dt: str, d: str) -> str:
    return f"COALESCE(CAST({dt} AS {_TZ}), CAST({d} AS {_TZ}) + INTERVAL 1 DAY)"


def _gap(max_gap_hours: float) -> tuple[int, str]:
    us = hours_us(max_gap_hours)
    return us, f"INTERVAL '{us}' MICROSECOND"


def _m(alias: str, table: str, field: str, on: str) -> str:
    """LEFT-joinable concept-map lookup ``alias`` for (table, field) on concept id ``on``."""
    return (f"{_MAP} {alias} ON {alias}.clif_table = {sql_str(table)} AND {alias}.clif_field = {sql_str(field)} "
            f"AND {alias}.concept_id = {on}")


_VISITS = f"""_v AS (
    SELECT vo.visit_occurrence_id, vo.person_id,
           COALESCE(vo.visit_source_value, CAST(vo.visit_occurrence_id AS VARCHAR)) AS hospitalization_id,
           {_ts('vo.visit_start_datetime', 'vo.visit_start_date')} AS admission_dttm,
           {_ts_end('vo.visit_end_datetime', 'vo.visit_end_date')} AS discharge_dttm
    FROM visit_occurrence vo
    WHERE vo.visit_concept_id IN (SELECT concept_id FROM {_MAP}
                                  WHERE clif_table = 'hospitalization' AND clif_field = 'visit_concept_id'))"""

_PERSON_ID = "COALESCE(p.person_source_value, CAST(p.person_id AS VARCHAR))"


def _attach(name: str, rows: str) -> str:
    """CTE ``name``: ``rows`` (with person_id, visit_occurrence_id, t) joined to its hospitalization."""
    return f"""{name}_src AS ({rows}),
{name} AS (
    SELECT v.hospitalization_id, v.discharge_dttm AS dis, x.* FROM {name}_src x
    JOIN _v v ON v.visit_occurrence_id = x.visit_occurrence_id
    UNION ALL
    SELECT v.hospitalization_id, v.discharge_dttm AS dis, x.* FROM {name}_src x
    JOIN _v v ON x.visit_occurrence_id IS NULL AND v.person_id = x.person_id
             AND x.t >= v.admission_dttm AND x.t <= v.discharge_dttm)"""


def _patient() -> str:
    birth = ("CAST(CAST(p.year_of_birth AS VARCHAR) || '-' || lpad(CAST(COALESCE(p.month_of_birth, 1) AS VARCHAR), 2, '0')"
             " || '-' || lpad(CAST(COALESCE(p.day_of_birth, 1) AS VARCHAR), 2, '0') AS DATE)")
    death = _ts("d.death_datetime", "d.death_date")
    death = (f"CASE WHEN d.death_datetime IS NULL THEN CAST(d.death_date AS {_TZ}) + INTERVAL 86399 SECOND "
             f"ELSE CAST(d.death_datetime AS {_TZ}) END")
    return f"""
SELECT {_PERSON_ID} AS patient_id,
       COALESCE(g.clif_value, 'Unknown') AS sex_category,
       COALESCE(CAST(p.birth_datetime AS DATE), {birth}) AS birth_date,
       dd.death_dttm AS death_dttm,
       COALESCE(r.clif_value, p.race_source_value) AS race_category,
       COALESCE(e.clif_value, p.ethnicity_source_value) AS ethnicity_category
FROM person p
LEFT JOIN {_m('g', 'patient', 'sex_category', 'p.gender_concept_id')}
LEFT JOIN {_m('r', 'patient', 'race_category', 'p.race_concept_id')}
LEFT JOIN {_m('e', 'patient', 'ethnicity_category', 'p.ethnicity_concept_id')}
LEFT JOIN (SELECT d.person_id, min({death}) AS death_dttm FROM death d GROUP BY d.person_id) dd
       ON dd.person_id = p.person_id"""


def _hospitalization() -> str:
    birth = "COALESCE(CAST(p.birth_datetime AS DATE), CAST(CAST(p.year_of_birth AS VARCHAR) || '-' || lpad(CAST(COALESCE(p.month_of_birth, 1) AS VARCHAR), 2, '0') || '-' || lpad(CAST(COALESCE(p.day_of_birth, 1) AS VARCHAR), 2, '0') AS DATE))"
    adm = "v.admission_dttm"
    age = (f"CAST(EXTRACT(year FROM {adm}) - EXTRACT(year FROM {birth}) - CASE WHEN "
           f"EXTRACT(month FROM {adm}) * 100 + EXTRACT(day FROM {adm}) < "
           f"EXTRACT(month FROM {birth}) * 100 + EXTRACT(day FROM {birth}) THEN 1 ELSE 0 END AS BIGINT)")
    dis_src = (f"CASE WHEN vo.discharged_to_source_value IN {sql_list(sorted(DISCHARGE_CATEGORIES))} "
               "THEN vo.discharged_to_source_value END")
    return f"""
WITH {_VISITS}
SELECT {_PERSON_ID} AS patient_id, v.hospitalization_id, v.admission_dttm, v.discharge_dttm,
       {age} AS age_at_admission,
       COALESCE(dc.clif_value, {dis_src},
                CASE WHEN vo.discharged_to_concept_id IS NOT NULL AND vo.discharged_to_concept_id <> 0
                     THEN 'Other' END) AS discharge_category
FROM _v v
JOIN visit_occurrence vo ON vo.visit_occurrence_id = v.visit_occurrence_id
JOIN person p ON p.person_id = v.person_id
LEFT JOIN {_m('dc', 'hospitalization', 'discharge_category', 'vo.discharged_to_concept_id')}"""


def _adt() -> str:
    rows = f"""SELECT vd.person_id, vd.visit_occurrence_id, vd.visit_detail_concept_id, vd.care_site_id,
           vd.visit_detail_source_value,
           {_ts('vd.visit_detail_start_datetime', 'vd.visit_detail_start_date')} AS t,
           {_ts_end('vd.visit_detail_end_datetime', 'vd.visit_detail_end_date')} AS t_end
    FROM visit_detail vd"""
    return f"""
WITH {_VISITS},
{_attach('_vd', rows)}
SELECT x.hospitalization_id, x.t AS in_dttm, x.t_end AS out_dttm,
       COALESCE(lc.clif_value, 'other') AS location_category,
       x.visit_detail_source_value AS location_name,
       cs.care_site_source_value AS hospital_id
FROM _vd x
LEFT JOIN {_m('lc', 'adt', 'location_category', 'x.visit_detail_concept_id')}
LEFT JOIN care_site cs ON cs.care_site_id = x.care_site_id"""


def _measurement_rows(table: str, field: str) -> str:
    return f"""SELECT m.person_id, m.visit_occurrence_id, c.clif_value AS category, c.unit_qualifier,
           m.value_as_number, m.unit_concept_id, m.unit_source_value, m.measurement_source_value,
           m.value_source_value,
           {_ts('m.measurement_datetime', 'm.measurement_date')} AS t
    FROM measurement m
    JOIN {_m('c', table, field, 'm.measurement_concept_id')}"""


def _vitals() -> str:
    return f"""
WITH {_VISITS},
{_attach('_mv', _measurement_rows('vitals', 'vital_category'))}
SELECT x.hospitalization_id, x.t AS recorded_dttm, x.category AS vital_category,
       x.value_as_number AS vital_value, x.measurement_source_value AS vital_name
FROM _mv x"""


def _labs() -> str:
    src = "upper(COALESCE(x.unit_source_value, ''))"
    base = "COALESCE(u.clif_value, x.unit_source_value)"
    qual = (f"CASE WHEN {src} LIKE '%DDU%' THEN 'DDU' WHEN {src} LIKE '%FEU%' THEN 'FEU' "
            "ELSE x.unit_qualifier END")
    unit = (f"CASE WHEN {qual} IS NULL OR {base} IS NULL OR upper({base}) LIKE '%FEU%' OR upper({base}) LIKE '%DDU%' "
            f"THEN {base} ELSE {base} || ' ' || {qual} END")
    return f"""
WITH {_VISITS},
{_attach('_ml', _measurement_rows('labs', 'lab_category'))}
SELECT x.hospitalization_id, x.t AS lab_collect_dttm, x.category AS lab_category,
       x.value_as_number AS lab_value_numeric, {unit} AS reference_unit,
       x.measurement_source_value AS lab_name, x.value_source_value AS lab_value
FROM _ml x
LEFT JOIN {_m('u', 'labs', 'reference_unit', 'x.unit_concept_id')}"""


def _exposures(table: str) -> str:
    """Device and procedure rows whose concept maps to ``table``.device_category, as intervals."""
    return f"""SELECT d.person_id, d.visit_occurrence_id, c.clif_value AS device_category,
           d.device_source_value AS device_name,
           {_ts('d.device_exposure_start_datetime', 'd.device_exposure_start_date')} AS t,
           {_ts_end('d.device_exposure_end_datetime', 'd.device_exposure_end_date')} AS e_raw
    FROM device_exposure d
    JOIN {_m('c', table, 'device_category', 'd.device_concept_id')}
    UNION ALL
    SELECT p.person_id, p.visit_occurrence_id, c.clif_value AS device_category,
           p.procedure_source_value AS device_name,
           {_ts('p.procedure_datetime', 'p.procedure_date')} AS t,
           {_ts_end('p.procedure_end_datetime', 'p.procedure_end_date')} AS e_raw
    FROM procedure_occurrence p
    JOIN {_m('c', table, 'device_category', 'p.procedure_concept_id')}"""


_DIGITS = " UNION ALL ".join(f"SELECT {i} AS d" for i in range(10))


def _interval_ctes(table: str, max_gap_hours: float) -> str:
    gap_us, gap = _gap(max_gap_hours)
    return f"""{_VISITS},
{_attach('_ex', _exposures(table))},
_iv AS (
    SELECT hospitalization_id, dis, device_category, device_name, t AS s,
           CASE WHEN e_raw IS NULL OR e_raw < t THEN t ELSE e_raw END AS e
    FROM _ex),
_dur AS (SELECT *, DATE_DIFF('microsecond', s, e) AS dur FROM _iv),
_dg AS ({_DIGITS}),
_n AS (SELECT a.d + 10 * b.d + 100 * c.d + 1000 * k.d AS n FROM _dg a CROSS JOIN _dg b CROSS JOIN _dg c CROSS JOIN _dg k),
_beats AS (
    SELECT hospitalization_id, device_category, device_name, s AS recorded_dttm, 1 AS is_start FROM _dur
    UNION ALL
    SELECT x.hospitalization_id, x.device_category, x.device_name, x.s + _n.n * {gap} AS recorded_dttm,
           0 AS is_start
    FROM _dur x JOIN _n ON _n.n >= 1 AND (_n.n + 1) * {gap_us} <= x.dur
    WHERE x.dur >= 2 * {gap_us}
    UNION ALL
    SELECT hospitalization_id, device_category, device_name, e - {gap} AS recorded_dttm, 0 AS is_start FROM _dur
    WHERE dur > {gap_us} AND dur % {gap_us} <> 0),
_stream AS (
    SELECT hospitalization_id, s AS t, 0 AS kind,
           CASE WHEN e > s THEN e ELSE s + INTERVAL 1 MICROSECOND END AS e_eff FROM _dur
    UNION ALL
    SELECT hospitalization_id, e AS t, 1 AS kind, CAST(NULL AS {_TZ}) AS e_eff FROM _dur
    WHERE dur > 0 AND dur < {gap_us} AND e < dis),
_run AS (
    SELECT hospitalization_id, t, kind,
           max(e_eff) OVER (PARTITION BY hospitalization_id ORDER BY t, kind
                            ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS m
    FROM _stream),
_stops AS (SELECT DISTINCT hospitalization_id, t FROM _run WHERE kind = 1 AND m <= t)"""


def _settings_ctes() -> str:
    """``_set``: FiO2 / flow / PEEP measurements per (hospitalization, time)."""
    val = "x.value_as_number"
    return f"""{_attach('_ms', _measurement_rows('respiratory_support', 'setting'))},
_set AS (
    SELECT x.hospitalization_id, x.t,
           max(CASE WHEN x.category = 'fio2_set'
                    THEN CASE WHEN {val} > 1 THEN round({val} / 100, 6) ELSE {val} END END) AS fio2_set,
           max(CASE WHEN x.category = 'lpm_set' THEN {val} END) AS lpm_set,
           max(CASE WHEN x.category = 'peep_set' THEN {val} END) AS peep_set
    FROM _ms x GROUP BY x.hospitalization_id, x.t)"""


def _respiratory_support(max_gap_hours: float) -> str:
    return f"""
WITH {_interval_ctes('respiratory_support', max_gap_hours)},
{_settings_ctes()}
SELECT b.hospitalization_id, b.recorded_dttm, b.device_category, b.device_name,
       st.fio2_set, st.lpm_set, st.peep_set
FROM _beats b
LEFT JOIN _set st ON b.is_start = 1 AND st.hospitalization_id = b.hospitalization_id AND st.t = b.recorded_dttm
UNION ALL
SELECT hospitalization_id, t AS recorded_dttm, 'Room Air' AS device_category,
       '(end of device exposure)' AS device_name, CAST(NULL AS DOUBLE) AS fio2_set,
       CAST(NULL AS DOUBLE) AS lpm_set, CAST(NULL AS DOUBLE) AS peep_set FROM _stops"""


def _ecmo_mcs(max_gap_hours: float) -> str:
    return f"""
WITH {_interval_ctes('ecmo_mcs', max_gap_hours)}
SELECT hospitalization_id, recorded_dttm, device_category, device_name,
       CASE WHEN upper(device_category) LIKE '%ECMO%' THEN 'ECMO'
            WHEN device_category IN ('Impella', 'IABP') THEN 'temporary LVAD' END AS mcs_group
FROM _beats"""


def _medication() -> str:
    rows = f"""SELECT d.person_id, d.visit_occurrence_id, dm.clif_value AS med_category, d.drug_source_value,
           d.route_source_value, d.quantity, d.dose_unit_source_value,
           {_ts('d.drug_exposure_start_datetime', 'd.drug_exposure_start_date')} AS t
    FROM drug_exposure d
    JOIN _dm dm ON dm.drug_concept_id = d.drug_concept_id"""
    return f"""
WITH {_VISITS},
_dm AS (
    SELECT concept_id AS drug_concept_id, clif_value FROM {_MAP}
    WHERE clif_table = 'medication_admin_intermittent' AND clif_field = 'med_category'
    UNION
    SELECT ca.descendant_concept_id AS drug_concept_id, m.clif_value FROM concept_ancestor ca
    JOIN {_MAP} m ON m.concept_id = ca.ancestor_concept_id
     AND m.clif_table = 'medication_admin_intermittent' AND m.clif_field = 'med_category'),
{_attach('_me', rows)}
SELECT x.hospitalization_id, x.t AS admin_dttm, x.med_category, x.drug_source_value AS med_name,
       x.route_source_value AS med_route_category, x.quantity AS med_dose,
       x.dose_unit_source_value AS med_dose_unit, 'given' AS mar_action_category
FROM _me x"""


def _hospital_diagnosis() -> str:
    rows = f"""SELECT co.person_id, co.visit_occurrence_id, co.condition_concept_id, co.condition_status_concept_id,
           co.condition_source_value,
           {_ts('co.condition_start_datetime', 'co.condition_start_date')} AS t
    FROM condition_occurrence co"""
    return f"""
WITH {_VISITS},
{_attach('_co', rows)}
SELECT x.hospitalization_id, COALESCE(x.condition_source_value, dx.clif_value) AS diagnosis_code,
       'icd10cm' AS diagnosis_code_format,
       CASE WHEN st.clif_value IN ('primary', 'primary+poa') THEN 1 ELSE 0 END AS diagnosis_primary,
       CASE WHEN st.clif_value IN ('poa', 'primary+poa') THEN 1 WHEN st.clif_value IS NULL THEN NULL ELSE 0 END
           AS poa_present
FROM _co x
LEFT JOIN {_m('dx', 'hospital_diagnosis', 'diagnosis_code', 'x.condition_concept_id')}
LEFT JOIN {_m('st', 'hospital_diagnosis', 'condition_status', 'x.condition_status_concept_id')}
WHERE COALESCE(x.condition_source_value, dx.clif_value) IS NOT NULL"""


def clif_views_sql(max_gap_hours: float = 24) -> dict[str, str]:
    """One SELECT per CLIF table, over the OMOP tables and ``_omop_concept_map``.

    Parameters
    ----------
    max_gap_hours : float
        The study's ``outcomes.max_gap_hours``: how long a CLIF respiratory-support or ECMO record
        holds without a successor. OMOP exposure intervals are turned into CLIF records under
        this rule (module docstring), so it must be the value the study runs with.

    Returns
    -------
    dict
        CLIF table name -> SQL (DuckDB dialect, portable to PostgreSQL and Spark through
        sqlglot). Columns carry CLIF names; times are ``TIMESTAMP WITH TIME ZONE``. The trial
        tables (enrollment, administration, adverse_event) are not included: they are read from
        the trial database under their own names.
    """
    return {
        "patient": _patient(),
        "hospitalization": _hospitalization(),
        "adt": _adt(),
        "vitals": _vitals(),
        "labs": _labs(),
        "respiratory_support": _respiratory_support(max_gap_hours),
        "medication_admin_intermittent": _medication(),
        "ecmo_mcs": _ecmo_mcs(max_gap_hours),
        "hospital_diagnosis": _hospital_diagnosis(),
    }


def _unmapped(table: str, concept: str, domains: tuple[str, ...]) -> str:
    ok = " OR ".join(f"m.clif_table = {sql_str(t)}" for t in domains)
    return f"""SELECT x.{concept} AS concept_id, count(*) AS n FROM {table} x
WHERE NOT EXISTS (SELECT 1 FROM {_MAP} m WHERE m.concept_id = x.{concept} AND ({ok}))
GROUP BY x.{concept}"""


def mapping_report_sql(max_gap_hours: float = 24) -> dict[str, str]:
    """Counting queries for what the mapping leaves out or cannot represent.

    Returns
    -------
    dict
        A message (what the rows are and what happens to them) -> SQL returning
        ``concept_id, n`` (``concept_id`` NULL when the count is not by concept). A non-zero
        ``n`` is reported; nothing is dropped silently.
    """
    out = {
        "visit_occurrence rows whose visit_concept_id is not mapped (not read as hospitalizations; "
        "add the concept under hospitalization.visit_concept_id)":
            f"""SELECT vo.visit_concept_id AS concept_id, count(*) AS n FROM visit_occurrence vo
WHERE vo.visit_concept_id NOT IN (SELECT concept_id FROM {_MAP}
      WHERE clif_table = 'hospitalization' AND clif_field = 'visit_concept_id')
GROUP BY vo.visit_concept_id""",
        "visit_detail rows whose visit_detail_concept_id is not mapped (read as location_category 'other')":
            _unmapped("visit_detail", "visit_detail_concept_id", ("adt",)),
        "person rows whose gender_concept_id is not mapped (read as sex_category 'Unknown')":
            _unmapped("person", "gender_concept_id", ("patient",)),
        "measurement rows whose concept is not mapped to a CLIF vital, lab or respiratory setting (ignored)":
            _unmapped("measurement", "measurement_concept_id", ("vitals", "labs", "respiratory_support")),
        "device_exposure rows whose concept is not mapped to respiratory support or ECMO (ignored)":
            _unmapped("device_exposure", "device_concept_id", ("respiratory_support", "ecmo_mcs")),
        "procedure_occurrence rows whose concept is not mapped to respiratory support or ECMO (ignored)":
            _unmapped("procedure_occurrence", "procedure_concept_id", ("respiratory_support", "ecmo_mcs")),
        "measurement rows of a mapped lab or vital without value_as_number (kept, value missing)":
            f"""SELECT m.measurement_concept_id AS concept_id, count(*) AS n FROM measurement m
JOIN {_MAP} c ON c.concept_id = m.measurement_concept_id AND c.clif_table IN ('labs', 'vitals')
WHERE m.value_as_number IS NULL GROUP BY m.measurement_concept_id""",
        "respiratory settings (FiO2, flow, PEEP) measured at a time when no respiratory-support exposure of the "
        "hospitalization starts (ignored: CLIF keeps settings on the device record)":
            f"""WITH {_interval_ctes('respiratory_support', max_gap_hours)},
{_settings_ctes()}
SELECT CAST(NULL AS BIGINT) AS concept_id, count(*) AS n FROM _set st
WHERE NOT EXISTS (SELECT 1 FROM _dur d WHERE d.hospitalization_id = st.hospitalization_id AND d.s = st.t)""",
        "ECMO exposures shorter than max_gap_hours that end before discharge with no ECMO record following: "
        "CLIF has no ECMO-off record, so the ECMO state holds up to max_gap_hours past the recorded end":
            f"""WITH {_interval_ctes('ecmo_mcs', max_gap_hours)}
SELECT CAST(NULL AS BIGINT) AS concept_id, count(*) AS n FROM _stops""",
        "respiratory-support exposures overlapping another one in the same hospitalization (CLIF holds one "
        "device at a time: the later record wins)":
            f"""WITH {_interval_ctes('respiratory_support', max_gap_hours)},
_ov AS (SELECT s, e, max(e) OVER (PARTITION BY hospitalization_id ORDER BY s, e
                                  ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev_e FROM _dur)
SELECT CAST(NULL AS BIGINT) AS concept_id, count(*) AS n FROM _ov WHERE prev_e > s""",
    }
    for table, concept in (("measurement", "measurement_concept_id"), ("drug_exposure", "drug_concept_id"),
                           ("device_exposure", "device_concept_id"),
                           ("procedure_occurrence", "procedure_concept_id"),
                           ("condition_occurrence", "condition_concept_id")):
        out[f"{table} rows with a visit_occurrence_id that is not a mapped hospitalization (ignored)"] = f"""
WITH {_VISITS}
SELECT x.{concept} AS concept_id, count(*) AS n FROM {table} x
WHERE x.visit_occurrence_id IS NOT NULL
  AND x.visit_occurrence_id NOT IN (SELECT visit_occurrence_id FROM _v)
  AND (x.{concept} IN (SELECT concept_id FROM {_MAP}) OR '{table}' = 'condition_occurrence')
GROUP BY x.{concept}"""
    return out
