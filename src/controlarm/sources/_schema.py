"""The data contract as code: CLIF 2.1 tables (lab categories of CLIF 3.0) plus the trial tables.

Room: ``sources`` (read by ``validate``). This is the single place that says which tables exist,
which columns they hold, of what type, which are required, and which category values are
permissible. ``docs/data-model.md`` is the prose version of the same contract.

Why our own definitions and not clifpy's schema files: clifpy pins ``pandas==2.3.3`` and pulls
build tools in, which a pipeline library cannot impose on its users. The definitions below were
written by hand from the CLIF 2.1 data dictionary (and the CLIF 3.0 lab category list); nothing is
loaded from clifpy at runtime.

Category matching is **exact and case-sensitive**, because CLIF is: ``device_category`` is
``"High Flow NC"`` (mixed case), ``location_category`` is ``"icu"`` (lower case), ``arm`` is
``"trial"``. A value that differs from an allowed one only by case or surrounding spaces is still
an error, but the message names the value it probably meant. Column *names*, on the other hand, are
matched case-insensitively (SQL identifiers in DuckDB are case-insensitive anyway) and are exposed
under the canonical spelling given here.

Only the vocabularies that docs/data-model.md lists are enforced (sex, discharge, location, vital,
lab, respiratory device, ECMO/MCS device, arm, relatedness). Other CLIF category columns
(race_category, mode_category, med_category, ...) are typed as strings and passed through
unchecked, so that a site's local extensions do not stop a run over columns no room uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Mapping

__all__ = [
    "Column",
    "TableSchema",
    "TABLES",
    "REQUIRED_TABLES",
    "OPTIONAL_TABLES",
    "DTYPES",
    "SEX_CATEGORIES",
    "DISCHARGE_CATEGORIES",
    "LOCATION_CATEGORIES",
    "VITAL_CATEGORIES",
    "LAB_CATEGORIES",
    "DEVICE_CATEGORIES",
    "ECMO_DEVICE_CATEGORIES",
    "ARM_CATEGORIES",
    "RELATEDNESS_CATEGORIES",
    "DUCKDB_TYPES",
]

#: Logical column types of the contract.
DTYPES = frozenset({"str", "float", "int", "bool", "date", "timestamp"})

#: Engine type each logical type is cast to. Timestamps are UTC-aware.
DUCKDB_TYPES: Mapping[str, str] = MappingProxyType(
    {
        "str": "VARCHAR",
        "float": "DOUBLE",
        "int": "BIGINT",
        "bool": "BOOLEAN",
        "date": "DATE",
        "timestamp": "TIMESTAMP WITH TIME ZONE",
    }
)


@dataclass(frozen=True)
class Column:
    """One column of the contract.

    Parameters
    ----------
    name : str
        Canonical column name (CLIF spelling).
    dtype : {"str", "float", "int", "bool", "date", "timestamp"}
        Logical type; the engine column is cast to ``DUCKDB_TYPES[dtype]``.
    required : bool
        A required column must exist and must not be empty in any row.
    categories : frozenset of str or None
        Permissible values (exact, case-sensitive), or None when the column is free text.
    """

    name: str
    dtype: str
    required: bool = False
    categories: frozenset[str] | None = None

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise ValueError(f"Column {self.name}: dtype must be one of {sorted(DTYPES)}; got {self.dtype!r}")


@dataclass(frozen=True)
class TableSchema:
    """One table of the contract.

    Parameters
    ----------
    name : str
        Canonical table name; also the file stem (``<name>.parquet`` / ``<name>.csv``).
    columns : tuple of Column
    key : tuple of str or None
        Columns whose combination must be unique, or None.
    id_column : {"patient_id", "hospitalization_id"}
        The level of the table: the id that links it to the rest of the data.
    required_table : bool
        A required table must be present; an optional one is treated as empty when absent.
    time_column : str or None
        The column that places a row in time (used for the "outside its hospitalization" check
        and by later rooms), or None.
    """

    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...] | None
    id_column: str
    required_table: bool
    time_column: str | None = None

    def __post_init__(self) -> None:
        names = [c.name for c in self.columns]
        if len(set(names)) != len(names):
            raise ValueError(f"TableSchema {self.name}: duplicate column names")
        for k in (self.key or ()) + ((self.time_column,) if self.time_column else ()) + (self.id_column,):
            if k not in names:
                raise ValueError(f"TableSchema {self.name}: {k!r} is not one of its columns")

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def required_columns(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.required)

    def column(self, name: str) -> Column:
        """The column called ``name`` (exact canonical spelling)."""
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"table {self.name} has no column {name!r}")


# --------------------------------------------------------------------------------------------
# Vocabularies (CLIF 2.1 data dictionary; lab_category from CLIF 3.0).
# --------------------------------------------------------------------------------------------

SEX_CATEGORIES = frozenset({"Male", "Female", "Unknown"})

# CLIF 2.1 discharge_category. docs/data-model.md names the common nine; the CLIF list is a
# superset and every CLIF value is accepted.
DISCHARGE_CATEGORIES = frozenset(
    {
        "Home",
        "Skilled Nursing Facility (SNF)",
        "Expired",
        "Acute Inpatient Rehab Facility",
        "Hospice",
        "Long Term Care Hospital (LTACH)",
        "Acute Care Hospital",
        "Group Home",
        "Chemical Dependency",
        "Against Medical Advice (AMA)",
        "Assisted Living",
        "Still Admitted",
        "Missing",
        "Other",
        "Psychiatric Hospital",
        "Shelter",
        "Jail",
    }
)

LOCATION_CATEGORIES = frozenset(
    {"ed", "ward", "stepdown", "icu", "procedural", "l&d", "hospice", "psych", "rehab", "radiology", "dialysis", "other"}
)

VITAL_CATEGORIES = frozenset(
    {"temp_c", "heart_rate", "sbp", "dbp", "spo2", "respiratory_rate", "map", "height_cm", "weight_kg"}
)

DEVICE_CATEGORIES = frozenset(
    {"IMV", "NIPPV", "CPAP", "High Flow NC", "Face Mask", "Trach Collar", "Nasal Cannula", "Room Air", "Other"}
)

ECMO_DEVICE_CATEGORIES = frozenset({"VV ECMO", "VA ECMO", "VAV ECMO", "Impella", "IABP", "Other"})

ARM_CATEGORIES = frozenset({"trial", "pool"})

RELATEDNESS_CATEGORIES = frozenset({"not related", "unlikely", "possible", "probable", "definite"})

# CLIF 3.0 lab_category list, plus the two CLIF 2.1 glucose names that 3.0 folded into
# "glucose" (so a 2.1 site's labs table passes without renaming a column no room uses).
LAB_CATEGORIES = frozenset(
    """
    ada albumin albumin_to_creatinine_ratio alkaline_phosphatase alt amphetamine amylase ast
    barbiturate basophils_absolute basophils_percent benzodiazepine bicarbonate bilirubin
    bilirubin_conjugated bilirubin_total bilirubin_unconjugated bnp bun calcium_ionized
    calcium_total chloride cholesterol ckmb co2 cocaine creatinine crp cystatin_c d_dimer
    eosinophils_absolute eosinophils_percent esr ethanol fentanyl ferritin fibrinogen free_t3
    free_t4 glucose hematocrit hematocrit_percent hemoglobin igfbp7 inr interleukin_01
    interleukin_02 interleukin_02_receptor_soluble interleukin_05 interleukin_06 interleukin_08
    interleukin_10 interleukin_13 interleukin_18 kim_1 lactate ldh lipase lymphocytes_absolute
    lymphocytes_percent macrophages_percent magnesium mesothelial methadone monocytes_absolute
    monocytes_percent nag neutrophils_absolute neutrophils_percent ngal neuron_specific_enolase
    nt_pro_bnp opiate other_absolute oxycodone pco2_arterial pco2_venous pcp ph_arterial ph_venous
    phosphate plasma_absolute platelet_count po2_arterial po2_mixed_venous potassium
    procalcitonin protein protein_to_creatinine_ratio pt ptt rbc rbc_absolute so2_arterial
    so2_central_venous so2_mixed_venous sodium timp_2 timp_2_igfbp7 total_protein
    toxic_granulation triglycerides troponin_i troponin_t tsh wbc wbc_absolute
    glucose_fingerstick glucose_serum
    """.split()
)


def _c(name: str, dtype: str, required: bool = False, categories: frozenset[str] | None = None) -> Column:
    return Column(name=name, dtype=dtype, required=required, categories=categories)


_R = True  # readability: marks required columns below

# --------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------

_TABLE_LIST = (
    TableSchema(
        name="patient",
        columns=(
            _c("patient_id", "str", _R),
            _c("sex_category", "str", _R, SEX_CATEGORIES),
            _c("birth_date", "date", _R),
            _c("death_dttm", "timestamp"),
            _c("race_category", "str"),
            _c("ethnicity_category", "str"),
        ),
        key=("patient_id",),
        id_column="patient_id",
        required_table=True,
    ),
    TableSchema(
        name="hospitalization",
        columns=(
            _c("patient_id", "str", _R),
            _c("hospitalization_id", "str", _R),
            _c("admission_dttm", "timestamp", _R),
            _c("discharge_dttm", "timestamp", _R),
            _c("age_at_admission", "int"),
            _c("admission_type_category", "str"),
            _c("discharge_category", "str", False, DISCHARGE_CATEGORIES),
        ),
        key=("hospitalization_id",),
        id_column="hospitalization_id",
        required_table=True,
        time_column="admission_dttm",
    ),
    TableSchema(
        name="adt",
        columns=(
            _c("hospitalization_id", "str", _R),
            _c("in_dttm", "timestamp", _R),
            _c("out_dttm", "timestamp", _R),
            _c("location_category", "str", _R, LOCATION_CATEGORIES),
            _c("location_name", "str"),
            _c("hospital_id", "str"),
        ),
        key=None,
        id_column="hospitalization_id",
        required_table=True,
        time_column="in_dttm",
    ),
    TableSchema(
        name="vitals",
        columns=(
            _c("hospitalization_id", "str", _R),
            _c("recorded_dttm", "timestamp", _R),
            _c("vital_category", "str", _R, VITAL_CATEGORIES),
            _c("vital_value", "float", _R),
            _c("vital_name", "str"),
            _c("meas_site_name", "str"),
        ),
        key=None,
        id_column="hospitalization_id",
        required_table=False,
        time_column="recorded_dttm",
    ),
    TableSchema(
        name="labs",
        columns=(
            _c("hospitalization_id", "str", _R),
            _c("lab_collect_dttm", "timestamp", _R),
            _c("lab_category", "str", _R, LAB_CATEGORIES),
            _c("lab_value_numeric", "float", _R),
            _c("reference_unit", "str", _R),
            _c("lab_order_dttm", "timestamp"),
            _c("lab_result_dttm", "timestamp"),
            _c("lab_name", "str"),
            _c("lab_value", "str"),
            _c("lab_order_category", "str"),
            _c("lab_specimen_category", "str"),
        ),
        key=None,
        id_column="hospitalization_id",
        required_table=True,
        time_column="lab_collect_dttm",
    ),
    TableSchema(
        name="respiratory_support",
        columns=(
            _c("hospitalization_id", "str", _R),
            _c("recorded_dttm", "timestamp", _R),
            _c("device_category", "str", _R, DEVICE_CATEGORIES),
            _c("device_name", "str"),
            _c("mode_name", "str"),
            _c("mode_category", "str"),
            _c("tracheostomy", "int"),
            _c("fio2_set", "float"),
            _c("lpm_set", "float"),
            _c("peep_set", "float"),
            _c("tidal_volume_set", "float"),
            _c("resp_rate_set", "float"),
            _c("pressure_control_set", "float"),
            _c("pressure_support_set", "float"),
            _c("flow_rate_set", "float"),
            _c("peak_inspiratory_pressure_set", "float"),
            _c("inspiratory_time_set", "float"),
            _c("tidal_volume_obs", "float"),
            _c("resp_rate_obs", "float"),
            _c("plateau_pressure_obs", "float"),
            _c("peak_inspiratory_pressure_obs", "float"),
            _c("peep_obs", "float"),
            _c("minute_vent_obs", "float"),
            _c("mean_airway_pressure_obs", "float"),
        ),
        key=None,
        id_column="hospitalization_id",
        required_table=True,
        time_column="recorded_dttm",
    ),
    TableSchema(
        name="medication_admin_intermittent",
        columns=(
            _c("hospitalization_id", "str", _R),
            _c("admin_dttm", "timestamp", _R),
            _c("med_category", "str", _R),
            _c("med_name", "str"),
            _c("med_group", "str"),
            _c("med_route_category", "str"),
            _c("med_dose", "float"),
            _c("med_dose_unit", "str"),
            _c("mar_action_category", "str"),
        ),
        key=None,
        id_column="hospitalization_id",
        required_table=False,
        time_column="admin_dttm",
    ),
    TableSchema(
        name="ecmo_mcs",
        columns=(
            _c("hospitalization_id", "str", _R),
            _c("recorded_dttm", "timestamp", _R),
            _c("device_category", "str", _R, ECMO_DEVICE_CATEGORIES),
            _c("device_name", "str"),
            _c("mcs_group", "str"),
            _c("flow", "float"),
            _c("sweep", "float"),
            _c("fdO2", "float"),
        ),
        key=None,
        id_column="hospitalization_id",
        required_table=False,
        time_column="recorded_dttm",
    ),
    TableSchema(
        name="hospital_diagnosis",
        columns=(
            _c("hospitalization_id", "str", _R),
            _c("diagnosis_code", "str", _R),
            _c("diagnosis_code_format", "str"),
            _c("diagnosis_name", "str"),
            _c("diagnosis_primary", "int"),
            _c("poa_present", "int"),
        ),
        key=None,
        id_column="hospitalization_id",
        required_table=False,
    ),
    TableSchema(
        name="enrollment",
        columns=(
            _c("patient_id", "str", _R),
            _c("hospitalization_id", "str", _R),
            _c("arm", "str", _R, ARM_CATEGORIES),
            _c("inclusion_dttm", "timestamp"),
        ),
        key=("patient_id",),
        id_column="patient_id",
        required_table=True,
        time_column="inclusion_dttm",
    ),
    TableSchema(
        name="administration",
        columns=(
            _c("patient_id", "str", _R),
            _c("admin_dttm", "timestamp", _R),
            _c("product", "str", _R),
            _c("dose", "float", _R),
            _c("dose_unit", "str", _R),
            _c("route", "str"),
            _c("lot", "str"),
        ),
        key=None,
        id_column="patient_id",
        required_table=True,
        time_column="admin_dttm",
    ),
    TableSchema(
        name="adverse_event",
        columns=(
            _c("patient_id", "str", _R),
            _c("onset_dttm", "timestamp", _R),
            _c("term", "str", _R),
            _c("soc", "str", _R),
            _c("grade", "int", _R),
            _c("serious", "bool", _R),
            _c("relatedness", "str", _R, RELATEDNESS_CATEGORIES),
            _c("outcome", "str"),
        ),
        key=None,
        id_column="patient_id",
        required_table=True,
        time_column="onset_dttm",
    ),
)

#: Every table of the contract, by canonical name, in pipeline order.
TABLES: Mapping[str, TableSchema] = MappingProxyType({t.name: t for t in _TABLE_LIST})

REQUIRED_TABLES: tuple[str, ...] = tuple(t.name for t in _TABLE_LIST if t.required_table)
OPTIONAL_TABLES: tuple[str, ...] = tuple(t.name for t in _TABLE_LIST if not t.required_table)
