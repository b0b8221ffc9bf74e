"""Report room: the privacy rule for free text that reaches aggregate outputs.

Upstream rooms may quote rows in free text (a data-quality warning naming a patient, an outcome
note with a date). This module owns the scrubber that ``index.html`` and ``results.json`` apply to
such text: every known patient and hospitalization id of the run becomes ``[id]`` and every ISO
date or timestamp becomes ``[date]``. Ids are matched as whole tokens (not inside a longer id).

It also owns the pseudonyms of the patient-level outputs: unless ``report.real_ids`` is on, every
patient id in ``matched_sets.csv``, ``analysis/``, the safety room's tables and listings and
``results.json`` is replaced by ``T-001``/``C-001``-style pseudonyms (:func:`pseudonyms`), so that
no output carries an input identifier. ``report.listings`` only adds the patient-level listings
(pseudonymous, in days); ``report.real_ids`` is the one explicit switch to the data's real ids.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .._run import StudyRun

__all__ = ["DATE", "ID_COLUMNS", "id_mode", "id_scrubber", "pseudonymise", "pseudonymous_run", "pseudonyms",
           "real_ids", "scrub_dates", "token_scrubber"]

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
    find = _id_finder(ids, r"[\w-]")

    def scrub(text: str) -> str:
        return find(scrub_dates(text))

    return scrub


def _id_finder(ids, word: str) -> Callable[[str], str]:
    """A function replacing every id of ``ids`` that stands in text between two non-``word``
    characters (or the text's ends) with ``[id]``, the longest id first where several start at one
    place: what ``re.sub(r"(?<!W)(?:id1|id2|...)(?!W)")`` does, sorted longest first.

    Why not that regex: the ids are every patient and stay of the cohort, up to millions at warehouse
    scale, and an alternation of a million ids took minutes and gigabytes to compile. Here the text is
    cut into maximal runs of ``word`` characters and each run is looked up in a set (an id of one
    run), or tried against the ids that begin with it (an id of several runs, like ``P-0042`` when
    ``-`` separates runs). Ids that begin with a non-``word`` character are rare; with one of them
    the plain regex is used.
    """
    run = re.compile(f"{word}+")
    boundary = re.compile(word)
    single: set[str] = set()
    multi: dict[str, list[str]] = {}
    odd: list[str] = []
    for i in ids:
        if run.fullmatch(i):
            single.add(i)
        elif (m := run.match(i)) is not None:
            multi.setdefault(m.group(0), []).append(i)
        else:
            odd.append(i)
    for group in multi.values():
        group.sort(key=lambda x: (-len(x), x))
    if odd:  # an id that begins with a non-word character: the plain regex over every id, exact
        keys = sorted(ids, key=lambda x: (-len(x), x))
        pattern = re.compile(rf"(?<!{word})(?:{'|'.join(map(re.escape, keys))})(?!{word})")
        return lambda text: pattern.sub("[id]", text)

    def find(text: str) -> str:
        out: list[str] = []
        last = 0
        for m in run.finditer(text):
            start = m.start()
            if start < last:
                continue
            end = None
            for cand in multi.get(m.group(0), ()):
                e = start + len(cand)
                if text.startswith(cand, start) and (e == len(text) or not boundary.match(text, e)):
                    end = e
                    break
            if end is None and m.group(0) in single:
                end = m.end()
            if end is not None:
                out.append(text[last:start])
                out.append("[id]")
                last = end
        out.append(text[last:])
        return "".join(out)

    return find


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


# --------------------------------------------------------------------------- the id mode
def real_ids(options: Mapping[str, Any]) -> bool:
    """Whether a report's outputs carry the data's real patient ids (``report_options`` of results.json).

    A results.json without ``real_ids`` was written before the key existed, when ``listings`` alone
    put the real ids in the outputs: it is read that way, so that a rebuild describes it truly.
    """
    if "real_ids" in options:
        return bool(options["real_ids"])
    return bool(options.get("listings", False))


def id_mode(options: Mapping[str, Any]) -> str:
    """One sentence saying which ids the report's outputs carry and whether listings are on."""
    listings = bool(options.get("listings", False))
    if real_ids(options):
        where = "matched_sets.csv, analysis/, results.json and the patient-level listings" if listings else \
            "matched_sets.csv and analysis/ (patient-level listings off)"
        return (f"Real patient ids (report.real_ids = true): {where} carry the data's patient ids; "
                "handle this folder as patient-level data.")
    if listings:
        return ("Patient-level listings on (report.listings = true), with pseudonymous ids only (T-nnn for treated "
                "patients, C-nnn for controls) and days from index, no calendar date; matched_sets.csv and "
                "analysis/ use the same pseudonyms; handle this folder as patient-level data.")
    return ("Pseudonymous ids: matched_sets.csv and analysis/ number patients T-nnn (treated) and C-nnn (controls) "
            "instead of the data's ids; patient-level listings off.")


# --------------------------------------------------------------------------- pseudonymous safety
#: Columns of the safety room's frames that hold an identifier.
_SAFETY_ID_COLUMNS = ("patient_id", "hospitalization_id")


def _complete(mapping: Mapping[str, str], ids) -> dict[str, str]:
    """``mapping`` plus ``X-001, X-002, ...`` for the ids it lacks (sorted, so stable)."""
    out = dict(mapping)
    extra = sorted({str(i) for i in ids if i is not None and i == i} - set(out))
    width = max(3, len(str(len(extra))))
    used = set(out.values())
    n = 0
    for key in extra:
        n += 1
        while f"X-{n:0{width}d}" in used:
            n += 1
        out[key] = f"X-{n:0{width}d}"
    return out


def _id_frames(obj) -> dict[str, Any]:
    import pandas as pd

    return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)
            if isinstance(getattr(obj, f.name), pd.DataFrame)
            and any(c in getattr(obj, f.name).columns for c in _SAFETY_ID_COLUMNS)}


def token_scrubber(ids) -> Callable[[str], str]:
    """A function that replaces every id of ``ids`` standing as a whole alphanumeric token in free
    text (``BM-MSC-2006-T01-1`` -> ``BM-MSC-2006-[id]-1``) by ``[id]``, and ISO dates by ``[date]``.

    Stricter than :func:`id_scrubber`, whose ids may not touch a hyphen: a free-text field of a
    listing (a lot number, a note) may build an id into a longer code.
    """
    keys = {str(i) for i in ids if i is not None and i == i and str(i)}
    find = _id_finder(keys, "[A-Za-z0-9_]")

    def scrub(text: str) -> str:
        return find(scrub_dates(text))

    return scrub


def _pseudonymous_frame(frame, patients: Mapping[str, str], stays: Mapping[str, str], scrub):
    out = frame.copy()
    for col in out.columns:  # free text (a lot number, a note) may quote an id or a date
        if col not in _SAFETY_ID_COLUMNS and out[col].dtype == object:
            out[col] = out[col].map(lambda v: scrub(v) if isinstance(v, str) else v)
    for col, mapping in (("patient_id", patients), ("hospitalization_id", stays)):
        if col in out.columns:
            out[col] = out[col].map(lambda v, m=mapping: v if v is None or v != v else m[str(v)]).astype(object)
    if "patient_id" in out.columns:  # rows in pseudonym order, each patient's rows kept in their order
        out = out.sort_values("patient_id", kind="mergesort", key=lambda s: s.astype(str)).reset_index(drop=True)
    return out


def pseudonymise_safety(safety, mapping: Mapping[str, str], known_ids=()):
    """A copy of the safety room's result with every id replaced by its pseudonym.

    Every DataFrame field of the (frozen dataclass) result that has a ``patient_id`` or
    ``hospitalization_id`` column is rebuilt with ``dataclasses.replace``: patient ids map through
    ``mapping`` (a trial patient without a matched set becomes ``X-001, ...``), hospitalization ids
    become ``H-001, ...`` in pseudonym order, and listing rows follow the pseudonyms. The
    aggregates hold no id and are shared as they are. Free text in those frames (a lot number
    that embeds a patient id) is scrubbed of every id of the frames, of ``mapping`` and of
    ``known_ids`` (:func:`token_scrubber`). A result that is not a dataclass is wrapped so that the
    real ids are replaced in what it renders (:class:`_RelabelledSafety`).
    """
    if safety is None:
        return None
    if not dataclasses.is_dataclass(safety) or isinstance(safety, type):
        return _RelabelledSafety(safety, mapping)
    frames = _id_frames(safety)
    ids = [v for f in frames.values() if "patient_id" in f.columns for v in f["patient_id"]]
    patients = _complete(mapping, ids)
    pairs: set[tuple[str, str]] = set()  # (pseudonym or "~" when unknown, real hospitalization id)
    for f in frames.values():
        if "hospitalization_id" not in f.columns:
            continue
        owners = f["patient_id"] if "patient_id" in f.columns else [None] * len(f)
        pairs |= {("~" if p is None or p != p else patients[str(p)], str(h))
                  for p, h in zip(owners, f["hospitalization_id"]) if h is not None and h == h}
    stays: dict[str, str] = {}
    for _, h in sorted(pairs):
        stays.setdefault(h, f"H-{len(stays) + 1:03d}")
    scrub = token_scrubber({*patients, *stays, *map(str, known_ids)})
    return dataclasses.replace(safety, **{name: _pseudonymous_frame(f, patients, stays, scrub)
                                          for name, f in frames.items()})


class _RelabelledSafety:
    """A safety result that is not a dataclass, with the real ids replaced in its renderings
    (whole tokens, plain and HTML-escaped)."""

    def __init__(self, inner, mapping: Mapping[str, str]):
        import html

        self._inner = inner
        table = {}
        for real, pseudo in mapping.items():
            table[real] = pseudo
            table[html.escape(real, quote=True)] = pseudo
        self._table = table
        alternatives = "|".join(re.escape(k) for k in sorted(table, key=lambda s: (-len(s), s)) if k)
        self._pattern = re.compile(rf"(?<![\w-])(?:{alternatives})(?![\w-])") if alternatives else None

    def _text(self, text: str) -> str:
        if self._pattern is None:
            return text
        return self._pattern.sub(lambda m: self._table[m.group(0)], text)

    def _walk(self, value):
        import pandas as pd

        if isinstance(value, str):
            return self._text(value)
        if isinstance(value, Mapping):
            return {k: self._walk(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(self._walk(v) for v in value)
        if isinstance(value, pd.DataFrame):
            return value.map(lambda v: self._text(v) if isinstance(v, str) else v)
        return value

    def to_html(self, *args, **kwargs):
        return self._text(str(self._inner.to_html(*args, **kwargs)))

    def to_dict(self, *args, **kwargs):
        return self._walk(self._inner.to_dict(*args, **kwargs))

    def tables(self, *args, **kwargs):
        return self._walk(self._inner.tables(*args, **kwargs))

    def __getattr__(self, name):
        value = getattr(self._inner, name)
        return self._walk(value) if not callable(value) else value


def pseudonymous_run(run: "StudyRun", mapping: Mapping[str, str]) -> "StudyRun":
    """``run`` with its safety result pseudonymised (:func:`pseudonymise_safety`), for rendering."""
    if getattr(run, "safety", None) is None:
        return run
    known: set[str] = set()
    cohort = getattr(run, "cohort", None)
    for col in ("patient_id", "hospitalization_id"):
        if cohort is not None and col in cohort.columns:
            known.update(str(v) for v in cohort[col].dropna().unique())
    return dataclasses.replace(run, safety=pseudonymise_safety(run.safety, mapping, known))
