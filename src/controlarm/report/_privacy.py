"""Report room: the privacy rule for free text that reaches aggregate outputs.

Upstream rooms may quote rows in free text (a data-quality warning naming a patient, an outcome
note with a date). This module owns the scrubber that ``index.html`` and ``results.json`` apply to
such text: every known patient and hospitalization id of the run becomes ``[id]`` and every ISO
date or timestamp becomes ``[date]``. Ids are matched as whole tokens (not inside a longer id).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .._run import StudyRun

__all__ = ["DATE", "id_scrubber", "scrub_dates"]

DATE = re.compile(
    r"\b\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?\b"
)


def scrub_dates(text: str) -> str:
    """Replace ISO dates and timestamps with ``[date]``."""
    return DATE.sub("[date]", str(text))


def id_scrubber(run: "StudyRun") -> Callable[[str], str]:
    """A function that replaces the run's patient/hospitalization ids and ISO dates in text."""
    ids: set[str] = set()
    for frame, cols in ((run.cohort, ("patient_id", "hospitalization_id")), (run.baseline, ("patient_id",)),
                        (run.matched, ("patient_id",)), (run.endpoints, ("patient_id",))):
        if frame is None:
            continue
        for col in cols:
            if col in frame.columns:
                ids.update(str(v) for v in frame[col].dropna().unique())
    ids.discard("")
    pattern = None
    if ids:
        alternatives = "|".join(re.escape(i) for i in sorted(ids, key=lambda s: (-len(s), s)))
        pattern = re.compile(rf"(?<![\w-])(?:{alternatives})(?![\w-])")

    def scrub(text: str) -> str:
        text = scrub_dates(text)
        return pattern.sub("[id]", text) if pattern is not None else text

    return scrub
