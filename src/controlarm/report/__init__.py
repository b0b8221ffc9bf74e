"""The `report` room: a self-contained HTML report, results.json, matched_sets.csv and a manifest.

``write_report(run, out_dir)`` is the front door; the builders below serve notebooks and the other
output formats (for example DOCX tables reuse ``table_one`` and ``outcomes_table``).
"""

from ._html import build_html
from ._tables import flow_table, methods_table, outcomes_table, table_one
from ._write import OUTPUT_FILES, dumps_json, matched_sets_csv, results_dict, write_report

__all__ = [
    "OUTPUT_FILES",
    "build_html",
    "dumps_json",
    "flow_table",
    "matched_sets_csv",
    "methods_table",
    "outcomes_table",
    "results_dict",
    "table_one",
    "write_report",
]
