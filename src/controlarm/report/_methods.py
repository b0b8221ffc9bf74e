"""Report room: methods text generated from the study file and the results, ready to paste.

Everything here is plain text built from ``results.json`` (its ``spec``, ``matching``,
``endpoint_definitions``, ``outcomes`` and ``reproducibility`` entries), so the text is the same on
the page, in ``tables.docx`` and after a rebuild. Where a setting is missing (an older or partial
spec) the sentence that needs it is left out rather than guessed.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["methods_paragraphs", "methods_references"]

_KIND_WORDS = {"binary": "binary endpoints", "time_to_event": "time to event",
               "continuous": "continuous endpoints", "count": "counts (free days)"}
_DISTANCE = {"mahalanobis": "Mahalanobis distance", "ps": "propensity score (logistic regression)",
             "logit_ps": "logit of the propensity score (logistic regression)"}
_ORDER = {"data": "in the order of the data", "largest": "largest propensity score first",
          "smallest": "smallest propensity score first", "random": "in random order"}
_COVARIATE_KIND = {"age": "age at index (years)", "sex": "male sex", "bmi": "body-mass index (kg/m²)",
                   "days_since_admission": "days from admission to index"}


def _list(items: Sequence[str], conj: str = "and") -> str:
    items = [str(i) for i in items if str(i)]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + f" {conj} " + items[-1]


def _date(value: Any) -> str:
    """An ISO date from the spec as prose ("1 March 2020"), so the page holds no ISO date."""
    try:
        d = _dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        return str(value)
    return f"{d.day} {d.strftime('%B')} {d.year}"


_GENERIC = {"exact", "permutation", "log-rank", "hazard", "conditional", "signed-rank", "stratified", "aligned-rank",
            "risk", "odds", "unstratified", "two-sided", "one-sided", "test", "estimate"}


def _lower(method: str) -> str:
    """A method name inside a sentence: generic first words lower-cased, names (Mantel, Cox) kept."""
    first, _, rest = method.partition(" ")
    return (first.lower() if first.lower() in _GENERIC else first) + (f" {rest}" if rest else "")


def _num(x: Any) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


def _covariate(c: Mapping[str, Any], default_hours: Any) -> str:
    kind = c.get("kind")
    name = str(c.get("name", ""))
    if kind in _COVARIATE_KIND:
        text = _COVARIATE_KIND[kind]
    elif kind in ("lab", "vital"):
        text = str(c.get("category") or name).replace("_", " ")
        if c.get("unit"):
            text += f" ({c['unit']})"
    elif kind == "device_at_index":
        text = f"{_list(c.get('devices') or [], 'or')} at index"
    elif kind == "diagnosis":
        text = f"{name.replace('_', ' ')} (ICD-10 {_list(c.get('codes') or [], 'or')})"
    else:
        text = name
    if kind in ("lab", "vital", "bmi"):
        hours = c.get("lookback_hours") or default_hours
        if hours:
            text += f", last value within {_num(hours)} h"
    return f"{text} [{name}]" if name and name not in text else text


def _design(r: Mapping[str, Any], spec: Mapping[str, Any]) -> str:
    study = r.get("study") or {}
    m = r.get("matching") or {}
    parts = [f"We compared the {m.get('n_treated', 'trial')} treated patients of the single-arm trial "
             f"“{study.get('name', '')}”" + (f" ({study['registration']})" if study.get("registration") else "")
             + " with an external control arm matched from routinely collected ICU data."]
    index = spec.get("index") or {}
    if index.get("product"):
        parts.append(f"Time zero (the index) of a trial patient was the first administration of {index['product']}.")
    cohort = spec.get("cohort") or {}
    who = "Candidate controls were patients"
    if cohort.get("age_min") is not None or cohort.get("age_max") is not None:
        lo, hi = cohort.get("age_min"), cohort.get("age_max")
        who += f" aged {_num(lo)} to {_num(hi)} years" if hi is not None else f" aged {_num(lo)} years or more"
    if cohort.get("calendar_start") or cohort.get("calendar_end"):
        if cohort.get("calendar_start") and cohort.get("calendar_end"):
            who += f" with an index from {_date(cohort['calendar_start'])} to {_date(cohort['calendar_end'])}"
        elif cohort.get("calendar_start"):
            who += f" with an index from {_date(cohort['calendar_start'])}"
        else:
            who += f" with an index up to {_date(cohort['calendar_end'])}"
    pool = index.get("pool") or {}
    conditions = []
    if pool.get("location"):
        conditions.append("in the ICU" if pool["location"] == "icu" else f"in a {pool['location']} location")
    if pool.get("devices"):
        conditions.append(f"on {_list(pool['devices'], 'or')}")
    if pool.get("medication"):
        conditions.append(f"treated with {pool['medication']} (a dose within the previous "
                          f"{_num(pool.get('medication_window_hours', 24))} h)")
    if conditions:
        who += f"; a candidate's index was the first time they were {_list(conditions)} at once"
    if who != "Candidate controls were patients":
        parts.append(who + ".")
    parts.append("The design stage (eligibility, baseline covariates, matching and balance) was completed before "
                 "any outcome was derived, and outcomes were derived for matched patients only.")
    return " ".join(parts)


def _matching(r: Mapping[str, Any], spec: Mapping[str, Any]) -> str:
    m = r.get("matching") or {}
    sm = spec.get("matching") or {}
    features = spec.get("features") or {}
    covs = features.get("covariates") or []
    parts = []
    if covs:
        parts.append("Baseline covariates were taken as of each patient's index: "
                     + _list([_covariate(c, features.get("default_lookback_hours")) for c in covs]) + ".")
    ratio = m.get("ratio")
    method = m.get("method")
    sentence = f"Each trial patient was matched to {ratio} control{'s' if ratio != 1 else ''}" if ratio else \
        "Trial patients were matched to controls"
    if method == "nearest":
        sentence += " by greedy nearest-neighbour matching"
        if sm.get("order") in _ORDER:
            sentence += f" ({_ORDER[sm['order']]})"
    elif method:
        sentence += f" by {method} matching"
    sentence += " with" + ("" if m.get("replace") else "out") + " replacement"
    if m.get("distance"):
        sentence += f", on the {_DISTANCE.get(m['distance'], m['distance'])}"
        if m.get("covariates"):
            sentence += f" of {_list(m['covariates'])}"
    if m.get("exact"):
        sentence += f", exactly on {_list(m['exact'])}"
    if m.get("caliper") is not None:
        units = sm.get("caliper_units")
        sentence += f", within a caliper of {_num(m['caliper'])}" + (f" ({units} units)" if units else "")
    parts.append(sentence + f", giving {m.get('n_sets', 0)} matched sets with {m.get('n_controls', 0)} controls.")
    parts.append("Balance was assessed by standardised mean differences (SMD, treated minus comparison group"
                 + (f"; denominator: {m['smd_denominator']}" if m.get("smd_denominator") else "")
                 + "), with |SMD| < 0.1 read as adequate balance.")
    return " ".join(parts)


def _endpoints(r: Mapping[str, Any], spec: Mapping[str, Any]) -> str:
    defs = r.get("endpoint_definitions") or {}
    order = (r.get("analysis") or {}).get("outcome_order") or list(defs)
    items = [f"{defs[n].get('label', n)} ({str(defs[n].get('definition', '')).rstrip('.')})" for n in order if n in defs]
    items += [f"{d.get('label', n)} ({str(d.get('definition', '')).rstrip('.')})" for n, d in defs.items() if n not in order]
    if not items:
        return ""
    text = "Endpoints were measured from each patient's index: " + "; ".join(items) + "."
    outcomes = spec.get("outcomes") or {}
    if "free_days_death_value" in outcomes:
        text += (f" Free days count death as {outcomes['free_days_death_value']}"
                 f"; support episodes separated by up to {_num(outcomes.get('max_gap_hours', 24))} h were joined.")
    return text


def _statistics(r: Mapping[str, Any], spec: Mapping[str, Any]) -> str:
    outcomes = r.get("outcomes") or {}
    by_kind: dict[str, list[str]] = {}
    estimates: list[str] = []
    published: list[str] = []
    sensitivity: list[str] = []
    for o in outcomes.values():
        for t in o.get("tests", []):
            if t.get("framing") == "matched":
                by_kind.setdefault(o.get("kind", ""), [])
                if t.get("method") not in by_kind[o.get("kind", "")]:
                    by_kind[o.get("kind", "")].append(t.get("method"))
            elif t.get("framing") == "published-style" and t.get("method") not in published:
                published.append(t.get("method"))
        for e in o.get("estimates", []):
            if e.get("framing") == "matched" and e.get("method") not in estimates:
                estimates.append(e.get("method"))
        for s in o.get("sensitivity") or []:
            label = s.get("label") or s.get("name") if isinstance(s, Mapping) else None
            if label and label not in sensitivity:
                sensitivity.append(str(label))
    parts = ["The primary analysis respected the matched sets."]
    for kind in ("binary", "time_to_event", "continuous", "count"):
        if by_kind.get(kind):
            parts.append(f"For {_KIND_WORDS[kind]}: {_list([_lower(m) for m in by_kind[kind] if m])}.")
    if estimates:
        parts.append(f"Effects were estimated by {_list([_lower(m) for m in estimates if m])}, "
                     "each with a 95% confidence interval.")
    if published:
        parts.append("For comparison with published reports, analyses that ignore the matched structure were also "
                     f"computed ({_list([_lower(m) for m in published if m])}); they are labelled "
                     "published-style, carry a warning that explains their bias, and are not the primary analysis.")
    alpha = (spec.get("analysis") or {}).get("alpha")
    parts.append("Tests are two-sided" + (f" at α = {_num(alpha)}" if alpha is not None else "")
                 + "; with few matched sets, exact distributions were used where available. Kaplan–Meier curves "
                 "show 95% pointwise confidence bands (exponential Greenwood). Quartiles use linear interpolation "
                 "(Hyndman & Fan type 7). Each test's conventions (continuity correction, ties, handling of "
                 "missing outcomes) are listed with its result.")
    if sensitivity:
        parts.append(f"Sensitivity analyses: {_list(sensitivity)}.")
    return " ".join(parts)


def _software(r: Mapping[str, Any]) -> str:
    rep = r.get("reproducibility") or {}
    pk = dict(rep.get("packages") or {})
    version = r.get("controlarm_version") or pk.get("controlarm", "")
    others = [f"{k} {v}" for k, v in sorted(pk.items()) if k != "controlarm" and v]
    text = f"Analyses used controlarm {version}"
    if rep.get("python"):
        text += f" on Python {rep['python']}"
    if others:
        text += f" ({_list(others)})"
    spec_hash = (r.get("study") or {}).get("spec_hash") or rep.get("spec_hash")
    text += "."
    if spec_hash:
        text += (f" The study specification (SHA-256 {spec_hash}) and seed {(r.get('study') or {}).get('seed')} "
                 "reproduce every number; the results, matched sets and analysis datasets accompany this report.")
    return text


def methods_paragraphs(results: Mapping[str, Any]) -> list[str]:
    """Methods text in paragraphs: design and index, matching, endpoints, statistics, software.

    Parameters
    ----------
    results : mapping
        The content of ``results.json``.

    Returns
    -------
    list of str
        Plain-text paragraphs (no markup), ready to paste into a manuscript or protocol.
    """
    spec = results.get("spec") or {}
    paragraphs = [_design(results, spec), _matching(results, spec), _endpoints(results, spec),
                  _statistics(results, spec), _software(results)]
    return [p for p in paragraphs if p]


def methods_references(results: Mapping[str, Any]) -> list[str]:
    """The references of the primary (matched-set) tests and estimates, deduplicated, in order."""
    refs: list[str] = []
    for o in (results.get("outcomes") or {}).values():
        for item in list(o.get("tests", [])) + list(o.get("estimates", [])):
            ref = item.get("reference")
            if item.get("framing") == "matched" and ref and ref not in refs:
                refs.append(str(ref))
    return refs
