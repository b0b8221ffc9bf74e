"""CLIF -> OMOP CDM v5.4: write a CLIF study's tables as OMOP Parquet tables (for the demo and tests).

Room: ``sources`` (OMOP adapter). The reverse of ``_sql`` on the columns the rooms use: a round
trip (export, then read back through the adapter) gives the same CLIF rows for those columns, so
the same results (tests/test_sources_omop.py). What OMOP has no place for is said in docs/omop.md
(lab_result_dttm, ventilator modes, ECMO flows, mar_action_category).

Surrogate keys are integers numbered in id/time order; source values keep the CLIF ids and raw
values (``person_source_value`` = patient_id, ``visit_source_value`` = hospitalization_id,
``unit_source_value`` = reference_unit, ...). Times are written as UTC ``TIMESTAMP``.

Respiratory support and ECMO: each CLIF record becomes one exposure whose end is the time the
record holds until under the CLIF rule (next record of the hospitalization, at most
``max_gap_hours``, never past discharge; a record that never holds gets end = start), computed by
the same SQL the rooms use (``cohort._intervals.holding_sql``). ``Device`` concepts go to
device_exposure, ``Procedure`` concepts to procedure_occurrence (concepts.csv ``omop_domain``).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ._cdm import CDM_TABLES, TRIAL_TABLES
from ._concepts import CONCEPT_MAP_RELATION, load_concept_map
from ._duckdb import register_concept_map

__all__ = ["OmopExport", "export_omop"]


@dataclass(frozen=True)
class OmopExport:
    """What :func:`export_omop` wrote.

    Attributes
    ----------
    files : dict
        Table (OMOP or trial) -> file written.
    row_counts : dict
        OMOP table -> rows written.
    unmapped : tuple of (str, str, str, int)
        (clif_table, clif_field, value, rows) written with concept_id 0 because the concept map
        has no row for the value (reading them back loses them or reads them as "other").
    """

    files: dict[str, Path]
    row_counts: dict[str, int]
    unmapped: tuple[tuple[str, str, str, int], ...]


def _lit(text: str) -> str:
    return "'" + str(text).replace("'", "''") + "'"


_T = "CAST({} AS TIMESTAMP)"  # TIMESTAMPTZ -> naive wall time in the connection's zone (UTC)


def _sql(max_gap_hours: float) -> dict[str, str]:
    from ...cohort._intervals import ECMO_LIKE, holding_sql, hours_us, us_interval

    gap = us_interval(hours_us(max_gap_hours))
    m = CONCEPT_MAP_RELATION
    first = f"""(SELECT * FROM (SELECT *, row_number() OVER (PARTITION BY clif_table, clif_field, clif_value
                 ORDER BY map_order) AS rn FROM {m}) z WHERE rn = 1)"""

    def look(alias: str, table: str, field: str, value: str) -> str:
        return (f"LEFT JOIN {first} {alias} ON {alias}.clif_table = '{table}' AND {alias}.clif_field = '{field}' "
                f"AND {alias}.clif_value = {value}")

    ehr = f"(SELECT concept_id FROM {first} t WHERE t.clif_table = 'all' AND t.clif_field = 'type_concept_id')"
    ids = """
        _pid AS (SELECT patient_id, row_number() OVER (ORDER BY patient_id) AS person_id
                 FROM (SELECT patient_id FROM patient UNION SELECT patient_id FROM hospitalization) u
                 WHERE patient_id IS NOT NULL),
        _vid AS (SELECT h.hospitalization_id, p.person_id, h.admission_dttm, h.discharge_dttm,
                        row_number() OVER (ORDER BY h.hospitalization_id) AS visit_occurrence_id
                 FROM hospitalization h JOIN _pid p ON p.patient_id = h.patient_id),
        _cs AS (SELECT hospital_id, row_number() OVER (ORDER BY hospital_id) AS care_site_id
                FROM (SELECT DISTINCT hospital_id FROM adt WHERE hospital_id IS NOT NULL) c)"""

    def support(src: str, clif_table: str, is_ecmo: bool) -> str:
        flag = f"CASE WHEN upper(r.device_category) LIKE '{ECMO_LIKE}' THEN 1 ELSE 0 END" if is_ecmo else "0"
        rows = f"""(SELECT r.hospitalization_id, r.device_category, r.recorded_dttm AS s, h.discharge_dttm AS dis,
                           r.device_name, {flag} AS _grp
                    FROM {src} r JOIN hospitalization h ON h.hospitalization_id = r.hospitalization_id) d"""
        held = holding_sql(rows, gap=gap, passthrough="hospitalization_id, device_name, _grp,",
                           partition="hospitalization_id, _grp")
        return f"""SELECT x.hospitalization_id, x.device_category, x.device_name, x.s,
                          CASE WHEN x.e > x.s THEN x.e ELSE x.s END AS e,
                          COALESCE(c.concept_id, 0) AS concept_id, COALESCE(c.omop_domain, 'Device') AS domain,
                          '{clif_table}' AS clif_table
                   FROM ({held}) x {look('c', clif_table, 'device_category', 'x.device_category')}"""

    support_all = f"""_sup AS (SELECT s.*, v.person_id, v.visit_occurrence_id FROM (
        {support('respiratory_support', 'respiratory_support', False)}
        UNION ALL
        {support('ecmo_mcs', 'ecmo_mcs', True)}) s JOIN _vid v ON v.hospitalization_id = s.hospitalization_id)"""

    qual = ("CASE WHEN upper(l.reference_unit) LIKE '%DDU%' THEN 'DDU' "
            "WHEN upper(l.reference_unit) LIKE '%FEU%' THEN 'FEU' END")
    base_unit = "trim(regexp_replace(l.reference_unit, '[\\s(\\[]*\\b(FEU|DDU)\\b[)\\]]*\\s*$', '', 'i'))"
    status = ("CASE WHEN d.diagnosis_primary = 1 AND d.poa_present = 1 THEN 'primary+poa' "
              "WHEN d.diagnosis_primary = 1 THEN 'primary' WHEN d.poa_present = 1 THEN 'poa' ELSE 'secondary' END")
    return {
        "person": f"""WITH {ids}
            SELECT p.person_id, COALESCE(g.concept_id, 0) AS gender_concept_id,
                   year(c.birth_date) AS year_of_birth, month(c.birth_date) AS month_of_birth,
                   day(c.birth_date) AS day_of_birth, CAST(c.birth_date AS TIMESTAMP) AS birth_datetime,
                   COALESCE(r.concept_id, 0) AS race_concept_id, COALESCE(e.concept_id, 0) AS ethnicity_concept_id,
                   p.patient_id AS person_source_value, c.sex_category AS gender_source_value,
                   0 AS gender_source_concept_id, c.race_category AS race_source_value, 0 AS race_source_concept_id,
                   c.ethnicity_category AS ethnicity_source_value, 0 AS ethnicity_source_concept_id
            FROM _pid p LEFT JOIN patient c ON c.patient_id = p.patient_id
            {look('g', 'patient', 'sex_category', 'c.sex_category')}
            {look('r', 'patient', 'race_category', 'c.race_category')}
            {look('e', 'patient', 'ethnicity_category', 'c.ethnicity_category')}""",
        "death": f"""WITH {ids}
            SELECT p.person_id, CAST({_T.format('c.death_dttm')} AS DATE) AS death_date,
                   {_T.format('c.death_dttm')} AS death_datetime, {ehr} AS death_type_concept_id
            FROM patient c JOIN _pid p ON p.patient_id = c.patient_id WHERE c.death_dttm IS NOT NULL""",
        "observation_period": f"""WITH {ids}
            SELECT row_number() OVER (ORDER BY v.person_id) AS observation_period_id, v.person_id,
                   CAST({_T.format('min(v.admission_dttm)')} AS DATE) AS observation_period_start_date,
                   CAST({_T.format('greatest(max(v.discharge_dttm), max(coalesce(c.death_dttm, v.discharge_dttm)))')} AS DATE)
                       AS observation_period_end_date,
                   {ehr} AS period_type_concept_id
            FROM _vid v JOIN _pid p ON p.person_id = v.person_id LEFT JOIN patient c ON c.patient_id = p.patient_id
            GROUP BY v.person_id""",
        "care_site": f"""WITH {ids}
            SELECT care_site_id, hospital_id AS care_site_name, hospital_id AS care_site_source_value FROM _cs""",
        "visit_occurrence": f"""WITH {ids}
            SELECT v.visit_occurrence_id, v.person_id,
                   (SELECT concept_id FROM {first} t WHERE t.clif_table = 'hospitalization'
                    AND t.clif_field = 'visit_concept_id') AS visit_concept_id,
                   CAST({_T.format('v.admission_dttm')} AS DATE) AS visit_start_date,
                   {_T.format('v.admission_dttm')} AS visit_start_datetime,
                   CAST({_T.format('v.discharge_dttm')} AS DATE) AS visit_end_date,
                   {_T.format('v.discharge_dttm')} AS visit_end_datetime, {ehr} AS visit_type_concept_id,
                   v.hospitalization_id AS visit_source_value,
                   COALESCE(dc.concept_id, 0) AS discharged_to_concept_id,
                   h.discharge_category AS discharged_to_source_value
            FROM _vid v JOIN hospitalization h ON h.hospitalization_id = v.hospitalization_id
            {look('dc', 'hospitalization', 'discharge_category', 'h.discharge_category')}""",
        "visit_detail": f"""WITH {ids}
            SELECT row_number() OVER (ORDER BY a.hospitalization_id, a.in_dttm, a.out_dttm, a.location_category)
                       AS visit_detail_id,
                   v.person_id, COALESCE(lc.concept_id, 0) AS visit_detail_concept_id,
                   CAST({_T.format('a.in_dttm')} AS DATE) AS visit_detail_start_date,
                   {_T.format('a.in_dttm')} AS visit_detail_start_datetime,
                   CAST({_T.format('a.out_dttm')} AS DATE) AS visit_detail_end_date,
                   {_T.format('a.out_dttm')} AS visit_detail_end_datetime, {ehr} AS visit_detail_type_concept_id,
                   cs.care_site_id, a.location_name AS visit_detail_source_value, v.visit_occurrence_id
            FROM adt a JOIN _vid v ON v.hospitalization_id = a.hospitalization_id
            LEFT JOIN _cs cs ON cs.hospital_id = a.hospital_id
            {look('lc', 'adt', 'location_category', 'a.location_category')}""",
        "measurement": f"""WITH {ids},
            _lab1 AS (SELECT * FROM (SELECT *, row_number() OVER (PARTITION BY clif_value, coalesce(unit_qualifier, '')
                      ORDER BY map_order) AS rn FROM {m} WHERE clif_table = 'labs' AND clif_field = 'lab_category') z
                      WHERE rn = 1),
            _rows AS (
                SELECT x.hospitalization_id, x.recorded_dttm AS t, COALESCE(c.concept_id, 0) AS concept_id,
                       x.vital_value AS value, CAST(NULL AS BIGINT) AS unit_concept_id, CAST(NULL AS VARCHAR) AS unit_src,
                       x.vital_name AS src, CAST(NULL AS VARCHAR) AS value_src, x.vital_category AS cat
                FROM vitals x {look('c', 'vitals', 'vital_category', 'x.vital_category')}
                UNION ALL
                SELECT r.hospitalization_id, r.recorded_dttm, c.concept_id,
                       CASE WHEN c.clif_value = 'fio2_set' THEN r.fio2_set * 100
                            WHEN c.clif_value = 'lpm_set' THEN r.lpm_set ELSE r.peep_set END,
                       0, CASE c.clif_value WHEN 'fio2_set' THEN '%' WHEN 'lpm_set' THEN 'L/min' ELSE 'cmH2O' END,
                       CAST(NULL AS VARCHAR), CAST(NULL AS VARCHAR), c.clif_value
                FROM respiratory_support r JOIN {first} c ON c.clif_table = 'respiratory_support'
                 AND c.clif_field = 'setting'
                 AND ((c.clif_value = 'fio2_set' AND r.fio2_set IS NOT NULL)
                      OR (c.clif_value = 'lpm_set' AND r.lpm_set IS NOT NULL)
                      OR (c.clif_value = 'peep_set' AND r.peep_set IS NOT NULL))
                UNION ALL
                SELECT l.hospitalization_id, l.lab_collect_dttm, COALESCE(q.concept_id, c.concept_id, 0),
                       l.lab_value_numeric, COALESCE(u.concept_id, 0), l.reference_unit, l.lab_name, l.lab_value,
                       l.lab_category
                FROM labs l
                LEFT JOIN _lab1 q ON q.clif_value = l.lab_category AND q.unit_qualifier = {qual}
                {look('c', 'labs', 'lab_category', 'l.lab_category')}
                {look('u', 'labs', 'reference_unit', base_unit)})
            SELECT row_number() OVER (ORDER BY r.hospitalization_id, r.t, r.cat, r.concept_id, r.value) AS measurement_id,
                   v.person_id, r.concept_id AS measurement_concept_id,
                   CAST({_T.format('r.t')} AS DATE) AS measurement_date, {_T.format('r.t')} AS measurement_datetime,
                   {ehr} AS measurement_type_concept_id, r.value AS value_as_number,
                   r.unit_concept_id, v.visit_occurrence_id, r.src AS measurement_source_value,
                   r.unit_src AS unit_source_value, r.value_src AS value_source_value
            FROM _rows r JOIN _vid v ON v.hospitalization_id = r.hospitalization_id""",
        "device_exposure": f"""WITH {ids}, {support_all}
            SELECT row_number() OVER (ORDER BY hospitalization_id, s, device_category, e) AS device_exposure_id,
                   person_id, concept_id AS device_concept_id,
                   CAST({_T.format('s')} AS DATE) AS device_exposure_start_date,
                   {_T.format('s')} AS device_exposure_start_datetime,
                   CAST({_T.format('e')} AS DATE) AS device_exposure_end_date,
                   {_T.format('e')} AS device_exposure_end_datetime, {ehr} AS device_type_concept_id,
                   visit_occurrence_id, device_name AS device_source_value
            FROM _sup WHERE domain <> 'Procedure'""",
        "procedure_occurrence": f"""WITH {ids}, {support_all}
            SELECT row_number() OVER (ORDER BY hospitalization_id, s, device_category, e) AS procedure_occurrence_id,
                   person_id, concept_id AS procedure_concept_id,
                   CAST({_T.format('s')} AS DATE) AS procedure_date, {_T.format('s')} AS procedure_datetime,
                   CAST({_T.format('e')} AS DATE) AS procedure_end_date, {_T.format('e')} AS procedure_end_datetime,
                   {ehr} AS procedure_type_concept_id, visit_occurrence_id, device_name AS procedure_source_value
            FROM _sup WHERE domain = 'Procedure'""",
        "drug_exposure": f"""WITH {ids}
            SELECT row_number() OVER (ORDER BY d.hospitalization_id, d.admin_dttm, d.med_category, d.med_name)
                       AS drug_exposure_id,
                   v.person_id, COALESCE(c.concept_id, 0) AS drug_concept_id,
                   CAST({_T.format('d.admin_dttm')} AS DATE) AS drug_exposure_start_date,
                   {_T.format('d.admin_dttm')} AS drug_exposure_start_datetime,
                   CAST({_T.format('d.admin_dttm')} AS DATE) AS drug_exposure_end_date,
                   {_T.format('d.admin_dttm')} AS drug_exposure_end_datetime, {ehr} AS drug_type_concept_id,
                   d.med_dose AS quantity, v.visit_occurrence_id, d.med_name AS drug_source_value,
                   d.med_route_category AS route_source_value, d.med_dose_unit AS dose_unit_source_value
            FROM medication_admin_intermittent d JOIN _vid v ON v.hospitalization_id = d.hospitalization_id
            {look('c', 'medication_admin_intermittent', 'med_category', 'd.med_category')}""",
        "condition_occurrence": f"""WITH {ids}
            SELECT row_number() OVER (ORDER BY d.hospitalization_id, d.diagnosis_code, d.diagnosis_primary)
                       AS condition_occurrence_id,
                   v.person_id, COALESCE(c.concept_id, 0) AS condition_concept_id,
                   CAST({_T.format('v.admission_dttm')} AS DATE) AS condition_start_date,
                   {_T.format('v.admission_dttm')} AS condition_start_datetime, {ehr} AS condition_type_concept_id,
                   COALESCE(st.concept_id, 0) AS condition_status_concept_id, v.visit_occurrence_id,
                   d.diagnosis_code AS condition_source_value, 0 AS condition_source_concept_id,
                   {status} AS condition_status_source_value
            FROM hospital_diagnosis d JOIN _vid v ON v.hospitalization_id = d.hospitalization_id
            {look('c', 'hospital_diagnosis', 'diagnosis_code', 'd.diagnosis_code')}
            {look('st', 'hospital_diagnosis', 'condition_status', status)}""",
    }


_UNMAPPED = (
    ("patient", "sex_category"), ("adt", "location_category"), ("vitals", "vital_category"),
    ("labs", "lab_category"), ("respiratory_support", "device_category"), ("ecmo_mcs", "device_category"),
    ("medication_admin_intermittent", "med_category"), ("hospitalization", "discharge_category"),
)


def export_omop(clif_folder: str | Path, out_folder: str | Path, *, max_gap_hours: float = 24,
                concept_map: pd.DataFrame | None = None) -> OmopExport:
    """Write a CLIF folder as OMOP CDM v5.4 Parquet tables, with the trial tables copied beside them.

    Parameters
    ----------
    clif_folder : path
        A folder of CLIF tables (``<table>.parquet`` / ``.csv``), as ``controlarm demo`` writes.
    out_folder : path
        Created if missing; ``<cdm_table>.parquet`` files and the trial table files are written.
    max_gap_hours : float
        The study's ``outcomes.max_gap_hours``: respiratory-support and ECMO records become
        exposures ending where the record stops holding under that rule.
    concept_map : DataFrame, optional
        From :func:`load_concept_map`; default the shipped map.

    Returns
    -------
    OmopExport
    """
    from .. import open_sources

    out = Path(out_folder)
    out.mkdir(parents=True, exist_ok=True)
    src = open_sources(clif_folder)
    try:
        con = src.con
        register_concept_map(con, concept_map if concept_map is not None else load_concept_map())
        files: dict[str, Path] = {}
        counts: dict[str, int] = {}
        for table, sql in _sql(max_gap_hours).items():
            cols = CDM_TABLES[table]
            con.execute(f"CREATE OR REPLACE TEMP VIEW _x AS {sql}")
            have = {r[0] for r in con.execute("DESCRIBE SELECT * FROM _x").fetchall()}
            select = ", ".join(f"CAST({c if c in have else 'NULL'} AS {t}) AS {c}" for c, t in cols)
            path = out / f"{table}.parquet"
            con.execute(f"COPY (SELECT {select} FROM _x ORDER BY 1) TO {_lit(str(path))} (FORMAT parquet)")
            files[table] = path
            counts[table] = int(con.execute(f"SELECT count(*) FROM read_parquet({_lit(str(path))})").fetchone()[0])
        unmapped = []
        for table, field in _UNMAPPED:
            rows = con.execute(
                f"""SELECT x.{field}, count(*) FROM {table} x WHERE x.{field} IS NOT NULL AND NOT EXISTS (
                    SELECT 1 FROM {CONCEPT_MAP_RELATION} m WHERE m.clif_table = '{table}' AND m.clif_field = '{field}'
                    AND m.clif_value = x.{field}) GROUP BY 1 ORDER BY 1""").fetchall()
            unmapped += [(table, field, str(v), int(n)) for v, n in rows]
        for name in TRIAL_TABLES:
            if name in src.files:
                target = out / src.files[name].name
                shutil.copyfile(src.files[name], target)
                files[name] = target
    finally:
        src.close()
    return OmopExport(files=files, row_counts=counts, unmapped=tuple(unmapped))
