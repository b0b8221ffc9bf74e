"""The data-quality report: what ``validate_sources`` found.

Room: ``validate``. Errors stop a run (``raise_if_errors``); warnings are counted and carried into
the report's ``data_quality`` section.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import DataContractError

__all__ = ["DataQualityReport"]


@dataclass(frozen=True)
class DataQualityReport:
    """Problems found in a study's tables.

    Attributes
    ----------
    errors : tuple of str
        One message per problem that breaks the data contract. Each names the table (file), the
        column, up to five offending rows or ids, and the fix.
    warnings : tuple of str
        Problems that do not stop a run (absent optional tables, records outside their stay, ...).
    row_counts : dict
        Table -> number of rows.
    """

    errors: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    row_counts: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when there are no errors (warnings allowed)."""
        return not self.errors

    def raise_if_errors(self) -> None:
        """Raise ``DataContractError`` listing every error; do nothing when there is none.

        Raises
        ------
        DataContractError
        """
        if self.errors:
            raise DataContractError(list(self.errors))

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form: ``{"errors": [...], "warnings": [...], "tables": {table: n_rows}}``."""
        return {"errors": list(self.errors), "warnings": list(self.warnings), "tables": dict(self.row_counts)}

    def to_text(self) -> str:
        """Plain-text rendering, errors first."""
        lines = [f"{len(self.errors)} error(s), {len(self.warnings)} warning(s)"]
        lines += [f"ERROR   {e}" for e in self.errors]
        lines += [f"WARNING {w}" for w in self.warnings]
        return "\n".join(lines)
