"""The `spec` room's models: the study file (TOML) as frozen pydantic models.

Every section forbids unknown keys, so a typo is an error that names the key's path rather than a
setting silently ignored. Cross-section rules (a matching covariate must be a defined feature) live
on ``Study``.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_serializer, model_validator

__all__ = [
    "Study",
    "StudySection",
    "DataSection",
    "OmopDataSection",
    "CohortSection",
    "PoolIndexRule",
    "IndexSection",
    "Covariate",
    "FeaturesSection",
    "MatchingSection",
    "LabOutcome",
    "OutcomesSection",
    "ScheduleSpec",
    "ContextEvent",
    "SafetySection",
    "AnalysisSection",
    "ReportSection",
    "PlanSection",
]

DEVICE_CATEGORIES = (
    "IMV", "NIPPV", "CPAP", "High Flow NC", "Face Mask", "Trach Collar", "Nasal Cannula", "Room Air", "Other",
)
LOCATION_CATEGORIES = (
    "ed", "ward", "stepdown", "icu", "procedural", "l&d", "hospice", "psych", "rehab", "radiology", "dialysis", "other",
)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StudySection(_Section):
    name: str = Field(min_length=1)
    registration: str = ""
    description: str = ""
    synthetic: bool = False
    seed: int = Field(default=0, ge=0)


class OmopDataSection(_Section):
    """``[data.omop]``: options of the OMOP CDM adapter (docs/omop.md)."""

    concepts: str | None = Field(default=None, description="extra concept-map rows (CSV with the columns of "
                                 "controlarm/sources/omop/concepts.csv), relative to the study file")


class DataSection(_Section):
    source: str = Field(min_length=1, description="folder of Parquet/CSV tables, a .duckdb file, "
                        "postgresql://...?schema=name or spark://...")
    cutoff: date | None = Field(default=None, description="vital status is known up to this date")
    model: Literal["clif", "omop"] = Field(default="clif", description="data model of the source: CLIF tables, "
                                           "or OMOP CDM v5.4 tables (mapped to CLIF by the OMOP adapter)")
    omop: OmopDataSection | None = None

    @model_validator(mode="after")
    def _omop_options_need_omop(self) -> "DataSection":
        if self.omop is not None and self.model != "omop":
            raise ValueError('[data.omop] is read only with data.model = "omop"')
        return self

    @model_serializer(mode="wrap")
    def _dump(self, handler):
        # Defaults are left out, so a CLIF study's canonical JSON (and its spec hash, and locks made
        # before these keys existed) does not change.
        out = handler(self)
        if self.model == "clif":
            out.pop("model", None)
        if self.omop is None:
            out.pop("omop", None)
        return out


class CohortSection(_Section):
    calendar_start: date | None = None
    calendar_end: date | None = None
    age_min: float = Field(default=18, ge=0, le=120)
    age_max: float | None = Field(default=None, ge=0, le=120)

    @model_validator(mode="after")
    def _ordered(self) -> "CohortSection":
        if self.calendar_start and self.calendar_end and self.calendar_end < self.calendar_start:
            raise ValueError("calendar_end must not be before calendar_start")
        if self.age_max is not None and self.age_max < self.age_min:
            raise ValueError("age_max must not be below age_min")
        return self


class PoolIndexRule(_Section):
    """A condition on the clinical state: it holds while every stated part holds at once.

    Parts: ``location`` (an adt location_category, or a list of them: any of), ``devices`` (the
    respiratory_support device in force is one of these), ``medication`` (a med_category, or a
    list: any of, given within the last ``medication_window_hours``). Used for the pool's index
    (``index.pool_method = "first_condition"``: the first time the condition holds), for the
    trial's when ``index.trial = "first_condition"`` (the same rule for both arms), and as the
    eligibility rule of risk-set matching (``index.pool_method = "risk_set"``).
    """

    location: Literal[LOCATION_CATEGORIES] | tuple[Literal[LOCATION_CATEGORIES], ...] | None = "icu"  # type: ignore[valid-type]
    devices: tuple[Literal[DEVICE_CATEGORIES], ...] = Field(default=(), min_length=0)  # type: ignore[valid-type]
    medication: str | tuple[str, ...] | None = None
    medication_window_hours: float = Field(default=24, gt=0, le=24 * 14)

    @model_validator(mode="after")
    def _something(self) -> "PoolIndexRule":
        if not self.locations and not self.devices and not self.medications:
            raise ValueError("give at least one of location, devices or medication")
        if any(not m.strip() for m in self.medications):
            raise ValueError("medication names must not be empty")
        return self

    @property
    def locations(self) -> tuple[str, ...]:
        """The location part as a tuple (empty when there is none)."""
        if self.location is None:
            return ()
        return (self.location,) if isinstance(self.location, str) else tuple(self.location)

    @property
    def medications(self) -> tuple[str, ...]:
        """The medication part as a tuple (empty when there is none)."""
        if self.medication is None:
            return ()
        return (self.medication,) if isinstance(self.medication, str) else tuple(self.medication)


class IndexSection(_Section):
    """Time zero.

    ``trial``: ``"first_administration"`` (first administration of ``product``) or
    ``"first_condition"`` (first time the ``pool`` condition holds: the same rule as the pool).
    ``pool_method``: ``"first_condition"`` (first time the ``pool`` condition holds) or
    ``"risk_set"`` (the landmark of the treated patient a candidate is matched to, set by risk-set
    matching; the ``pool`` condition is then the eligibility rule, timed on the clock
    ``risk_set_origin``).
    """

    trial: Literal["first_administration", "first_condition"] = "first_administration"
    product: str = Field(min_length=1)
    pool: PoolIndexRule
    pool_method: Literal["first_condition", "risk_set"] = "first_condition"
    risk_set_origin: Literal["icu_admission", "hospital_admission"] = "icu_admission"


class Covariate(_Section):
    """One baseline covariate, as of the index.

    kinds: ``age`` (years at index), ``sex`` (1 = Male), ``bmi`` (kg/m² from the last weight and
    height), ``lab`` and ``vital`` (last value of ``category`` in the look-back window),
    ``days_since_admission``, ``device_at_index`` (1 if the device at index is in ``devices``),
    ``diagnosis`` (1 if any ICD-10 code starts with one of ``codes``).
    """

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    kind: Literal["age", "sex", "bmi", "lab", "vital", "days_since_admission", "device_at_index", "diagnosis"]
    category: str | None = None
    unit: str | None = None
    lookback_hours: float | None = Field(default=None, gt=0)
    devices: tuple[Literal[DEVICE_CATEGORIES], ...] | None = None  # type: ignore[valid-type]
    codes: tuple[str, ...] | None = None

    @model_validator(mode="after")
    def _needs(self) -> "Covariate":
        if self.kind in ("lab", "vital") and not self.category:
            raise ValueError(f"a {self.kind} covariate needs `category` (for example \"crp\")")
        if self.kind == "device_at_index" and not self.devices:
            raise ValueError("a device_at_index covariate needs `devices` (for example [\"IMV\"])")
        if self.kind == "diagnosis" and not self.codes:
            raise ValueError("a diagnosis covariate needs `codes` (ICD-10 prefixes, for example [\"E11\"])")
        return self

    @property
    def binary(self) -> bool:
        return self.kind in ("sex", "device_at_index", "diagnosis")


class FeaturesSection(_Section):
    default_lookback_hours: float = Field(default=48, gt=0)
    covariates: tuple[Covariate, ...] = Field(min_length=1)

    @field_validator("covariates")
    @classmethod
    def _unique(cls, v: tuple[Covariate, ...]) -> tuple[Covariate, ...]:
        names = [c.name for c in v]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"covariate names must be unique; repeated: {', '.join(dup)}")
        return v


class MatchingSection(_Section):
    method: Literal["nearest", "optimal"] = "nearest"
    distance: Literal["mahalanobis", "robust_mahalanobis", "ps", "logit_ps"] = "mahalanobis"
    covariates: tuple[str, ...] = Field(min_length=1)
    exact: tuple[str, ...] = ()
    ratio: int = Field(default=1, ge=1, le=10)
    min_controls: int | None = Field(default=None, ge=1, le=10)   # variable ratio: at least this many
    max_controls: int | None = Field(default=None, ge=1, le=10)   # variable ratio: at most this many
    replace: bool = False
    # None = MatchIt's defaults: order "largest" for PS distances, "data" for Mahalanobis;
    # caliper in SD units of a PS distance, raw units of a Mahalanobis distance.
    order: Literal["data", "largest", "smallest", "random"] | None = None
    caliper: float | None = Field(default=None, gt=0)
    caliper_units: Literal["sd", "raw"] | None = None
    covariate_calipers: dict[str, float] = Field(default_factory=dict)   # e.g. {age = 5}
    covariate_caliper_units: Literal["raw", "sd"] = "raw"
    discard: Literal["none", "both", "treated", "control"] = "none"      # common-support discard (PS only)
    ps_model: Literal["logistic", "firth", "ridge"] = "logistic"

    @model_validator(mode="after")
    def _ratios(self) -> "MatchingSection":
        if (self.min_controls is None) != (self.max_controls is None):
            raise ValueError("give both min_controls and max_controls for a variable ratio, or neither")
        if self.min_controls is not None and self.max_controls < self.min_controls:
            raise ValueError("max_controls must not be below min_controls")
        if any(w <= 0 for w in self.covariate_calipers.values()):
            raise ValueError("covariate_calipers must be positive widths")
        return self


class LabOutcome(_Section):
    category: str = Field(min_length=1)
    day: int = Field(ge=0, le=365)
    window_days: float = Field(default=1, gt=0, le=14)
    unit: str = ""

    @model_validator(mode="after")
    def _unit_is_the_harmonised_one(self) -> "LabOutcome":
        # Values arrive harmonised (sources room); the unit only labels them, so it must be that unit.
        from ..sources._units import harmonised_unit

        have = harmonised_unit(self.category)

        def norm(u: str) -> str:
            return u.replace("µ", "u").replace("μ", "u").replace(" FEU", "").replace("ng/mL", "ug/L").strip().lower()

        if self.unit.strip() and have and norm(self.unit) != norm(have):
            raise ValueError(f"unit {self.unit!r} differs from the unit {self.category} is harmonised to "
                             f"({have!r}). Fix: set unit = {have!r}")
        return self


class OutcomesSection(_Section):
    """Endpoints relative to each patient's index (definitions: ``controlarm.outcomes``).

    ``free_days`` may also name ``"hospital"``; ``who_scale_days`` lists days N for "WHO Clinical
    Progression Scale at day N" endpoints (``who_d{N}``), none by default.
    """

    survival_days: tuple[int, ...] = (28, 60)
    need_imv: bool = True
    free_days: tuple[Literal["imv", "hfno", "oxygen", "icu", "hospital"], ...] = ("imv", "hfno", "oxygen", "icu")
    free_days_horizon: int = Field(default=28, ge=1, le=365)
    free_days_death_value: Literal[0, -1] = 0
    max_gap_hours: float = Field(default=24, gt=0, le=24 * 7)
    labs: tuple[LabOutcome, ...] = ()
    who_scale_days: tuple[int, ...] = ()

    @field_validator("survival_days")
    @classmethod
    def _positive(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if any(d < 1 or d > 3650 for d in v):
            raise ValueError("survival_days must be whole days from 1 to 3650")
        return tuple(sorted(set(v)))

    @field_validator("who_scale_days")
    @classmethod
    def _who_days(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if any(d < 1 or d > 365 for d in v):
            raise ValueError("who_scale_days must be whole days from 1 to 365")
        return tuple(sorted(set(v)))

    @field_validator("free_days")
    @classmethod
    def _unique_free_days(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        dup = sorted({k for k in v if v.count(k) > 1})
        if dup:
            raise ValueError(f"free_days must not repeat a kind; repeated: {', '.join(dup)}")
        return v


class ScheduleSpec(_Section):
    """The protocol's administration schedule, for adherence."""

    n_administrations: int = Field(default=1, ge=1, le=100)
    interval_hours: float = Field(default=0, ge=0)
    tolerance_hours: float = Field(default=24, ge=0)
    dose_min: float | None = Field(default=None, ge=0)
    dose_max: float | None = Field(default=None, ge=0)
    dose_unit: str = ""

    @model_validator(mode="after")
    def _doses(self) -> "ScheduleSpec":
        if self.dose_min is not None and self.dose_max is not None and self.dose_max < self.dose_min:
            raise ValueError("dose_max must not be below dose_min")
        return self


class ContextEvent(_Section):
    """An event counted among matched controls from their diagnoses, as context for the trial's AEs."""

    name: str = Field(min_length=1)
    codes: tuple[str, ...] = Field(min_length=1)


class SafetySection(_Section):
    schedule: ScheduleSpec | None = None
    teae_days: int = Field(default=28, ge=0, le=3650)      # treatment-emergent: onset from first dose to day N
    infusion_window_hours: float = Field(default=24, ge=0, le=24 * 14)
    context_events: tuple[ContextEvent, ...] = ()


class AnalysisSection(_Section):
    published_style: bool = True
    alpha: float = Field(default=0.05, gt=0, lt=1)


class PlanSection(_Section):
    """Plan of the confirmatory trial from the finished analysis (``controlarm.plan``).

    Optional: when the section is absent the plan runs with these defaults and the spec hash is
    unchanged. ``alpha`` None means ``[analysis] alpha``; ``effects`` lists the assumed-effect
    scenarios; the user values feed the ``"user"`` scenario.
    """

    enabled: bool = True
    control: Literal["matched", "pool"] = "matched"
    effects: tuple[Literal["observed", "ci_near_null", "ci_far", "user"], ...] = ("observed", "ci_near_null")
    alpha: float | None = Field(default=None, gt=0, lt=1)
    power: float = Field(default=0.8, gt=0, lt=1)
    allocation: float = Field(default=1.0, ge=0.1, le=10)
    dropout: float = Field(default=0.0, ge=0, lt=1)
    n_sims: int = Field(default=2000, ge=100, le=1_000_000)
    p_treated: float | None = Field(default=None, gt=0, lt=1)
    hazard_ratio: float | None = Field(default=None, gt=0)
    free_days_shift: float | None = None
    lab_ratio: float | None = Field(default=None, gt=0)
    curves: bool = True

    @field_validator("effects")
    @classmethod
    def _effects(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if not v:
            raise ValueError("effects must name at least one scenario")
        return tuple(dict.fromkeys(v))


class ReportSection(_Section):
    listings: bool = False                      # patient-level listings (pseudonymous ids, days) in the report
    real_ids: bool = False                      # the data's real patient ids instead of T-001/C-001 pseudonyms
    suppress_small_cells: bool = False          # show pool-derived counts below the threshold as "<N"
    small_cell_threshold: int = Field(default=5, ge=1, le=100)

    @model_serializer(mode="wrap")
    def _dump(self, handler):
        # real_ids is left out while off, so the canonical JSON (the spec hash, and locks made before
        # the key existed) does not change.
        out = handler(self)
        if not self.real_ids:
            out.pop("real_ids", None)
        return out


class Study(_Section):
    """A validated, frozen study specification.

    ``spec_hash`` is the SHA-256 of the canonical JSON of the spec, written into every output so a
    report can be traced to the exact plan that produced it.
    """

    study: StudySection
    data: DataSection
    cohort: CohortSection = CohortSection()
    index: IndexSection
    features: FeaturesSection
    matching: MatchingSection
    outcomes: OutcomesSection = OutcomesSection()
    safety: SafetySection = SafetySection()
    analysis: AnalysisSection = AnalysisSection()
    report: ReportSection = ReportSection()
    plan: PlanSection | None = None

    _base_dir: Path = PrivateAttr(default_factory=Path.cwd)

    @model_validator(mode="after")
    def _cross(self) -> "Study":
        names = {c.name for c in self.features.covariates}
        for key in ("covariates", "exact"):
            unknown = [c for c in getattr(self.matching, key) if c not in names]
            if unknown:
                raise ValueError(
                    f"matching.{key} names {', '.join(map(repr, unknown))}, which "
                    f"{'is' if len(unknown) == 1 else 'are'} not defined under [[features.covariates]] "
                    f"(defined: {', '.join(sorted(names))})"
                )
        unknown = [c for c in self.matching.covariate_calipers if c not in names]
        if unknown:
            raise ValueError(f"matching.covariate_calipers names {', '.join(map(repr, unknown))}, not defined under [[features.covariates]]")
        both = set(self.matching.covariates) & set(self.matching.exact)
        if both:
            raise ValueError(f"{', '.join(sorted(both))} cannot be both a distance covariate and an exact stratum")
        return self

    @property
    def base_dir(self) -> Path:
        """Folder that relative paths in the spec (``data.source``) are resolved against."""
        return self._base_dir

    @property
    def spec_hash(self) -> str:
        # an absent [plan] section leaves the hash of study files written before it existed unchanged
        dump = self.model_dump(mode="json", exclude={"plan"} if self.plan is None else None)
        canonical = json.dumps(dump, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    def covariate(self, name: str) -> Covariate:
        for c in self.features.covariates:
            if c.name == name:
                return c
        raise KeyError(name)
