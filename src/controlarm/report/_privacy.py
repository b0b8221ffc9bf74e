"""Report room: the privacy rule for free text that reaches aggregate outputs.

Upstream rooms may quote rows in free text (a data-quality warning naming a patient, an outcome
note with a date). This module owns the scrubber that ``index.html`` and ``results.json`` apply to
such text: every known patient and hospitalization id of the run becomes ``[id]`` and every ISO
date or timestamp becomes ``[date]``. Ids are matched as whole tokens (not inside a longer id).

It also owns the pseudonyms of the patient-level outputs: unless ``report.listings`` is on, every
patient id in ``matched_sets.csv`` and ``analysis/`` is replaced by ``T-001``/``C-001``-style
pseudonyms (:func:`pseudonyms`), so that no output carries an input identifier.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .._run import StudyRun

__all__ = ["DATE", "ID_COLUMNS", "id_scrubber", "pseudonymise", "pseudonyms", "scrub_dates"]

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


# --------------------------------------------------------------------------- pseudonyms
#: Columns of the analysis datasets that hold a patient id.
ID_COLUMNS = ("USUBJID", "patient_id")


def pseudonyms(matched) -> dict[str, str]:
    """Real patient id -> stable pseudonym: ``T-001, T-002, ...`` for treated patients and
    ``C-001, ...`` for controls, numbered by first appearance in report order (set, treated first,
    then id). Deterministic: the same matched sets give the same pseudonyms.
    """
    from ._tables import sort_matched

    m = sort_matched(matched)
    width = max(3, len(str(len(m))))
    out: dict[str, str] = {}
    counters = {"T": 0, "C": 0}
    for pid, role in zip(m["patient_id"].astype(str), m["role"].astype(str)):
        if pid in out:
            continue
        prefix = "T" if role == "treated" else "C"
        counters[prefix] += 1
        out[pid] = f"{prefix}-{counters[prefix]:0{width}d}"
    return out


def pseudonymise(frame, mapping: dict[str, str]):
    """A copy of ``frame`` with every id column (:data:`ID_COLUMNS`) mapped through ``mapping``.

    An id the mapping lacks (not a matched patient) becomes ``X-<n>`` in order of first
    appearance, never the real id.
    """
    out = frame.copy()
    for col in ID_COLUMNS:
        if col not in out.columns:
            continue
        extra: dict[str, str] = {}

        def one(value, extra=extra):
            if value is None or value != value:
                return value
            key = str(value)
            if key in mapping:
                return mapping[key]
            return extra.setdefault(key, f"X-{len(extra) + 1:03d}")

        out[col] = out[col].map(one).astype(object)
    return out
