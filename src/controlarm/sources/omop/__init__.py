"""OMOP CDM v5.4 source adapter: OMOP tables read as the CLIF-shaped data model, and back.

``clif_views_sql`` gives one portable SELECT per CLIF table over the OMOP tables and the concept
map (``concepts.csv``, extended from the study file by ``load_concept_map``); ``register_omop``
runs it on DuckDB; ``export_omop`` writes CLIF data as OMOP. See docs/omop.md.
"""

from ._cdm import CDM_TABLES, TRIAL_TABLES
from ._concepts import CONCEPT_COLUMNS, CONCEPT_MAP_RELATION, load_concept_map
from ._duckdb import OmopMapping, register_concept_map, register_omop, write_clif
from ._export import OmopExport, export_omop
from ._sql import CLIF_VIEW_TABLES, clif_views_sql, mapping_report_sql

__all__ = [
    "CDM_TABLES",
    "TRIAL_TABLES",
    "CLIF_VIEW_TABLES",
    "CONCEPT_COLUMNS",
    "CONCEPT_MAP_RELATION",
    "load_concept_map",
    "clif_views_sql",
    "mapping_report_sql",
    "register_concept_map",
    "register_omop",
    "write_clif",
    "OmopMapping",
    "OmopExport",
    "export_omop",
]
