"""Report room: the page's audit and trial-planning sections, rendered from ``results.json``'s
``audit`` and ``plan`` (aggregates only; see docs/results-schema.md).

* "Audit of the binary outcomes": for each binary outcome, the matched-set p-values over every
  allocation of events to matched sets consistent with the arm counts, where the study's actual
  allocation sits, and which common test reproduces the published-style p-value.
* "Plan of the confirmatory trial": sample sizes per endpoint for each assumed effect, what could
  not be planned and why, and the power curves.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

from . import _figures_plan
from ._format import fmt_num, fmt_p
from ._markup import FigureCounter, esc, figure, table

if TYPE_CHECKING:
    from ._bundle import ReportBundle

__all__ = ["audit_section", "plan_section"]

_TESTS = {
    "exact_conditional": "Exact conditional (matched sets)",
    "mantel_haenszel": "Cochran–Mantel–Haenszel, no correction",
    "mantel_haenszel_cc": "Cochran–Mantel–Haenszel, continuity correction",
    "logrank_by_set": "Log-rank stratified by set",
    "rosenbaum_gamma": "Rosenbaum Γ at which significance is lost",
}


def _share(x: Any) -> str:
    return "—" if x is None else f"{100 * float(x):.1f}%"


def _val(name: str, x: Any) -> str:
    return fmt_num(x, 2) if name == "rosenbaum_gamma" else fmt_p(x)


def audit_section(b: "ReportBundle", fig: FigureCounter) -> str:
    audit = b.results.get("audit")
    head = '<section id="audit"><h2>Audit of the binary outcomes</h2>'
    if not audit or not audit.get("outcomes"):
        return head + ('<p class="note">No audit in the results (no binary outcome, or the run '
                       "predates the audit).</p></section>")
    alpha = float((audit.get("settings") or {}).get("alpha") or 0.05)
    parts = [head, '<p class="caption">A reader of the published study sees only the design and '
             "the arm counts. Below, each matched-set test is computed for every allocation of the "
             "events to the matched sets that is consistent with those counts (weighted by the "
             "number of patient-level configurations giving it), and the study's actual allocation "
             "is placed in that distribution. <em>Share ≤ actual</em> is the weighted share of "
             "allocations whose p-value is at most the actual one (for Γ, at least).</p>"]
    panels = []
    for name, o in audit["outcomes"].items():
        parts.append(f"<h3>{esc(o.get('label', name))}: event = {esc(o.get('event', ''))}</h3>")
        if o.get("skipped"):
            parts.append(f'<p class="note">Not audited: {esc(o["skipped"])}.</p>')
            continue
        a = o.get("audit") or {}
        dist = a.get("distribution") or {}
        actual = o.get("actual") or {}
        how = ("all enumerated" if a.get("enumerated") else
               f"{a.get('n_samples')} uniform draws, seed {a.get('seed')}; Monte Carlo SE of each "
               "share in results.json")
        parts.append(f'<p class="caption">{a.get("n_treated")} treated in {len(a.get("set_sizes") or [])} '
                     f"sets, {a.get('n_controls')} controls; events {a.get('treated_events')} vs "
                     f"{a.get('control_events')}. {a.get('n_distinct')} distinct allocations ({esc(how)}), "
                     f"{a.get('n_patient_configurations')} patient-level configurations.</p>")
        rows = [{"test": label, "actual": _val(t, (actual.get(t) or {}).get("p")),
                 "where": _share((actual.get(t) or {}).get("share_at_or_below")),
                 "min": _val(t, (dist.get(t) or {}).get("min")),
                 "median": _val(t, (dist.get(t) or {}).get("median")),
                 "max": _val(t, (dist.get(t) or {}).get("max")),
                 "share": _share((dist.get(t) or {}).get("share_below_alpha"))}
                for t, label in _TESTS.items()]
        parts.append(table(pd.DataFrame(rows),
                           [("test", "Matched-set test"), ("actual", "Actual allocation"),
                            ("where", "Share ≤ actual"), ("min", "Min"), ("median", "Median"),
                            ("max", "Max"), ("share", f"Share p < {alpha:g}")],
                           numeric=("actual", "where", "min", "median", "max", "share"),
                           cls="group-matched"))
        cands = [{"test": c.get("method", c.get("name")), "framing": c.get("framing", ""),
                  "actual": fmt_p((actual.get(c.get("name")) or {}).get("p")),
                  "range": fmt_p(c.get("p_min")) if c.get("p_min") == c.get("p_max")
                  else f"{fmt_p(c.get('p_min'))} – {fmt_p(c.get('p_max'))}",
                  "rep": "" if c.get("reproduces") is None else ("yes" if c["reproduces"] else "no")}
                 for c in a.get("candidates") or []]
        pub = o.get("published_style") or {}
        parts.append(table(pd.DataFrame(cands),
                           [("test", "Common test"), ("framing", "Framing"),
                            ("actual", "Actual allocation"), ("range", "Range over allocations"),
                            ("rep", "Reproduces the published-style p")],
                           numeric=("actual", "range")))
        ident = ", ".join(pub.get("identified") or []) or "no common test"
        frag = a.get("fragility") or {}
        parts.append(f'<p class="caption">The published-style analysis ({esc(pub.get("test"))}, '
                     f"p = {esc(fmt_p(pub.get('p')))}) is reproduced from the counts alone by: "
                     f"{esc(ident)}."
                     + (f" {esc(str(frag.get('kind', 'fragility')).capitalize())} index (Fisher, arm "
                        f"totals): {esc(frag.get('index'))}." if frag.get("index") is not None else "")
                     + "</p>")
        panels.append({"label": o.get("label", name), "points": (o.get("points") or {}).get("exact_conditional"),
                       "actual_p": (actual.get("exact_conditional") or {}).get("p"),
                       "published_p": pub.get("p")})
    if panels:
        parts.append(figure(_figures_plan.audit_distribution_svg(panels, alpha), "audit",
                            "Distribution of the exact conditional p-value over allocations",
                            "Grey bars: weighted share of the allocations of events to matched sets "
                            "consistent with the arm counts, at each exact conditional p-value. Solid "
                            "line: the study's actual allocation. Dashed: the published-style p-value "
                            "(McNemar on pseudo-pairs). Dotted: alpha.", fig()))
    parts.append("</section>")
    return "".join(parts)


def _size_rows(scen: dict[str, Any]) -> pd.DataFrame:
    rows = []
    for e in scen.get("endpoints") or []:
        eff = e.get("effect") or {}
        assumed = next((f"{k} {fmt_num(eff[k], 3)}" for k in
                        ("p_treated", "hazard_ratio", "shift", "difference") if eff.get(k) is not None), "")
        if eff.get("p_control") is not None:
            assumed = f"p control {fmt_num(eff['p_control'], 3)}, p treated {fmt_num(eff.get('p_treated'), 3)}"
        sim = ("—" if e.get("simulated_power") is None else
               f"{fmt_num(e['simulated_power'], 3)} ± {fmt_num(e.get('mc_se'), 3)}")
        rows.append({"endpoint": e.get("endpoint"), "assumed": assumed, "method": e.get("method"),
                     "control": e.get("n_control"), "treated": e.get("n_treated"),
                     "enrol": e.get("n_total_enrolled"),
                     "events": "—" if e.get("events") is None else fmt_num(e["events"], 1), "sim": sim})
    return pd.DataFrame(rows, columns=["endpoint", "assumed", "method", "control", "treated", "enrol",
                                       "events", "sim"])


def plan_section(b: "ReportBundle", fig: FigureCounter) -> str:
    plan = b.results.get("plan")
    head = '<section id="plan"><h2>Plan of the confirmatory trial</h2>'
    if not plan:
        return head + ('<p class="note">No plan in the results (<code>[plan] enabled = false</code>, or '
                       "the run predates the plan).</p></section>")
    s = plan.get("settings") or {}
    parts = [head, f'<p class="caption">Two-sided alpha {fmt_num(s.get("alpha"), 3)}, power '
             f"{fmt_num(s.get('power'), 2)}, allocation {fmt_num(s.get('allocation'), 2)}:1 "
             f"(treated:control), dropout {fmt_num(100 * float(s.get('dropout') or 0), 1)}% (enrolment "
             f"inflated for it); control-arm outcomes from the {esc(s.get('control'))} controls. "
             f"Simulated power from {esc(s.get('n_sims'))} trials per size, seed {esc(s.get('seed'))}, "
             "with its Monte Carlo standard error. Observed effects from a small matched study are "
             "uncertain and tend to be optimistic; the nearer confidence limit is the cautious "
             "assumption.</p>"]
    for scen in plan.get("scenarios") or []:
        parts.append(f"<h3>Assumed effect: {esc(scen.get('meaning', scen.get('effect')))}</h3>")
        rows = _size_rows(scen)
        if len(rows):
            parts.append(table(rows, [("endpoint", "Endpoint"), ("assumed", "Assumed"), ("method", "Method"),
                                      ("control", "Control (evaluable)"), ("treated", "Treated (evaluable)"),
                                      ("enrol", "Enrol (both arms)"), ("events", "Events"),
                                      ("sim", "Simulated power ± MC SE")],
                               numeric=("control", "treated", "enrol", "events", "sim")))
        skipped = scen.get("not_planned") or []
        if skipped:
            parts.append("<p class=\"caption\">Not planned: " + "; ".join(
                f"{esc(x.get('endpoint'))} ({esc(x.get('reason'))})" for x in skipped) + ".</p>")
    curves = plan.get("curves") or []
    if curves:
        parts.append(figure(_figures_plan.power_curves_svg(curves, s.get("power")), "power",
                            "Power curves of the confirmatory trial",
                            "Simulated power (points, bars ±2 Monte Carlo SE) and the formula where one "
                            "exists (dashed) against patients per control arm, for each endpoint under "
                            "the first effect scenario that planned it; dotted vertical lines mark the "
                            "planned sizes, the grey line the target power.", fig()))
    parts.append("</section>")
    return "".join(parts)
