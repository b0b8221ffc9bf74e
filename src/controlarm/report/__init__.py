"""The `report` room: a self-contained HTML report, DOCX tables, CSVs, results.json, ADaM-shaped
analysis datasets and a manifest.

``write_report(run, out_dir)`` is the front door; ``rebuild_report(results_dir)`` renders a saved
report again without recomputing (``controlarm report``). The builders below serve notebooks and
the other output formats.
"""

from ._adam import analysis_datasets
from ._bundle import ReportBundle, load_bundle, read_saved_inputs, saved_inputs
from ._html import build_html, render_html
from ._rebuild import rebuild_report
from ._results import SCHEMA_VERSION, dumps_json, results_dict, results_from_dict
from ._tables import flow_table, methods_table, outcomes_table, table_one
from ._write import OUTPUT_FILES, RENDERED_FILES, matched_sets_csv, render_outputs, write_report

__all__ = [
    "OUTPUT_FILES",
    "RENDERED_FILES",
    "SCHEMA_VERSION",
    "ReportBundle",
    "analysis_datasets",
    "build_html",
    "dumps_json",
    "flow_table",
    "load_bundle",
    "matched_sets_csv",
    "methods_table",
    "outcomes_table",
    "read_saved_inputs",
    "rebuild_report",
    "render_html",
    "render_outputs",
    "results_dict",
    "results_from_dict",
    "saved_inputs",
    "table_one",
    "write_report",
]
