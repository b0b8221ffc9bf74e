"""The record of one study run: the plain objects every room produced, handed to the report room.

Nothing here computes; it only carries. The pipeline fills it, the report room reads it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported only for type checkers, to keep rooms decoupled at runtime
    import pandas as pd

    from .analysis._results import Results
    from .cohort._flow import Flow
    from .outcomes._endpoints import Endpoint
    from .spec import Study

__all__ = ["StudyRun"]


@dataclass(frozen=True)
class StudyRun:
    """Everything a report needs.

    Attributes
    ----------
    study : Study
        The frozen, validated study specification (``study.spec_hash`` identifies it).
    flow : Flow
        Eligibility and matching flow with exclusion counts by reason.
    cohort : DataFrame
        ``patient_id, hospitalization_id, group ("trial"/"pool"), index_time`` of eligible patients.
    baseline : DataFrame
        ``patient_id, group`` plus one column per covariate, as of the index (eligible patients).
    covariate_kinds : dict
        Covariate name -> "binary" or "continuous".
    matched : DataFrame
        The tidy matched table: ``set_id, patient_id, role ("treated"/"control"), weight,
        distance, index_time``; one row per matched patient.
    balance : DataFrame
        One row per covariate: ``covariate, kind, mean_treated, mean_pool, mean_matched,
        smd_before, smd_after`` (SMD convention in ``balance.attrs["smd_denominator"]``).
    endpoints : DataFrame
        One row per matched patient: ``set_id, patient_id, role`` plus endpoint columns.
    endpoint_defs : tuple of Endpoint
    results : Results
    data_quality : dict
        ``{"warnings": [...], "tables": {table: n_rows}}``.
    trajectories : dict of DataFrame
        Long per-patient data for figures, all times in days from index, matched patients only:
        ``"support"`` (patient_id, role, set_id, kind: device/ecmo/icu, category, start_day, end_day),
        ``"labs"`` (patient_id, role, set_id, lab_category, day, value) for days -1..horizon, and
        ``"events"`` (patient_id, role, set_id, kind: administration/adverse_event/death/discharge,
        day, label).
    safety : object or None
        The safety room's result (``to_dict()``, ``to_html()``), or None when not computed.
    provenance : dict
        Input file hashes, spec hash, seed, package versions, timings.
    audit : dict or None
        The audit room's study audit (``audit_study``): per binary outcome, the distribution of
        matched-set p-values over every allocation consistent with the arm counts and where the
        actual allocation sits. Aggregates only. None when not computed.
    plan : dict or None
        The plan room's plan of the confirmatory trial (``plan_trial``): its aggregate inputs,
        settings, sample sizes per effect scenario and power curves. None when not computed.
    """

    study: "Study"
    flow: "Flow"
    cohort: "pd.DataFrame"
    baseline: "pd.DataFrame"
    covariate_kinds: dict[str, str]
    matched: "pd.DataFrame"
    balance: "pd.DataFrame"
    endpoints: "pd.DataFrame"
    endpoint_defs: tuple["Endpoint", ...]
    results: "Results"
    data_quality: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    trajectories: dict[str, "pd.DataFrame"] = field(default_factory=dict)
    safety: Any = None
    audit: dict[str, Any] | None = None
    plan: dict[str, Any] | None = None
