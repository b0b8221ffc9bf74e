"""The plan room: sample size and power curves for the confirmatory randomised trial.

One function per endpoint (binary mortality, time to death, free days, a continuous marker), all
returning a ``SampleSize``; simulations are seeded and vectorised and report their Monte Carlo
error, in fixed seeded chunks run across processes with results independent of the worker
count; ``power_curve`` gives figure data and ``plot_power_curves`` draws it (matplotlib lazily).
"""

from ._binary import plan_binary, power_binary, simulate_power_binary
from ._continuous import plan_continuous, power_ttest, simulate_power_ttest
from ._curves import plot_power_curves, power_curve
from ._free_days import plan_free_days, simulate_power_free_days, treated_distribution
from ._result import SampleSize, TrialPlan
from ._study import EFFECTS, PlanSettings, plan_inputs, plan_trial
from ._simulate import CHUNK, simulate_rejections
from ._survival import (
    event_probability,
    logrank_z,
    plan_survival,
    schoenfeld_events,
    simulate_power_survival,
)

__all__ = [
    "SampleSize",
    "PlanSettings",
    "plan_inputs",
    "plan_trial",
    "EFFECTS",
    "TrialPlan",
    "plan_binary",
    "plan_survival",
    "plan_free_days",
    "plan_continuous",
    "power_binary",
    "power_ttest",
    "schoenfeld_events",
    "event_probability",
    "treated_distribution",
    "simulate_power_binary",
    "simulate_power_survival",
    "simulate_power_free_days",
    "simulate_power_ttest",
    "power_curve",
    "plot_power_curves",
    "logrank_z",
    "simulate_rejections",
    "CHUNK",
]
