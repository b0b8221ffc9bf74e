"""Eligibility intervals for risk-set (time-aligned) matching.

In risk-set matching a candidate may serve as a control for a treated patient only if, at the
treated patient's landmark (the time of treatment, measured on a common clock such as "time since
ICU admission"), the candidate is eligible: alive, meeting the index rule's condition, inside the
calendar window and the age limits. The candidate's index is then set to that same landmark on
their own clock, so neither arm accrues immortal time.

This module gives the matching room what it needs, computed in the engine:

* ``intervals``: for every enrolled patient (trial and pool), the maximal intervals ``[start,
  end)`` on which they are eligible, with the clock origin and the offsets from it;
* ``landmarks``: for every trial patient, the landmark (first administration of the product) on
  the same clock, and whether they were themselves eligible then.

:meth:`Eligibility.at_risk` lists the candidates at risk at a landmark and their index time.

The clock (``index.risk_set_origin``): ``"icu_admission"`` (the first adt ICU ``in_dttm`` of the
hospitalization; candidates never in ICU have no clock and are never at risk) or
``"hospital_admission"``.

References
----------
Li YP, Propert KJ, Rosenbaum PR. Balanced risk set matching. J Am Stat Assoc 2001;96:870-882.
doi:10.1198/016214501753208573
Thomas LE, Yang S, Wojdyla D, Schaubel DE. Matching with time-dependent treatments: a review and
look forward. Stat Med 2020;39:2350-2370. doi:10.1002/sim.8533
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..errors import InputError
from ._intervals import sql_str
from ._rules import condition_sql

if TYPE_CHECKING:
    from ..sources import Sources
    from ..spec import Study

__all__ = ["Eligibility", "derive_eligibility"]

_DAY = pd.Timedelta(days=1)


@dataclass(frozen=True)
class Eligibility:
    """Eligibility intervals and trial landmarks on a common clock.

    Attributes
    ----------
    intervals : DataFrame
        ``patient_id, hospitalization_id, group, start_time, end_time, origin_time, start_offset,
        end_offset, start_day, end_day``: one row per maximal interval ``[start_time, end_time)``
        on which the patient is eligible; offsets (Timedelta) and days (float) are from
        ``origin_time`` (NaT/NaN when the hospitalization has no clock origin). Sorted by group
        (trial first), patient, start.
    landmarks : DataFrame
        ``patient_id, hospitalization_id, index_time, origin_time, landmark_offset, landmark_day,
        eligible_at_landmark``: trial patients' first administration on the same clock.
    origin : str
        ``"icu_admission"`` or ``"hospital_admission"``.
    """

    intervals: pd.DataFrame
    landmarks: pd.DataFrame
    origin: str

    def at_risk(self, landmark: pd.Timedelta | float) -> pd.DataFrame:
        """Pool candidates eligible at ``landmark`` on their own clock, with their index time.

        Parameters
        ----------
        landmark : Timedelta or float
            Offset from the clock origin (a float is read as days).

        Returns
        -------
        DataFrame
            ``patient_id, hospitalization_id, origin_time, index_time`` with ``index_time =
            origin_time + landmark``, for every pool candidate with an interval holding
            ``start_offset <= landmark < end_offset``; sorted by patient_id.
        """
        if not isinstance(landmark, pd.Timedelta):
            if not isinstance(landmark, (int, float)) or not math.isfinite(landmark):
                raise InputError(f"landmark must be a Timedelta or a finite number of days; got {landmark!r}")
            landmark = pd.Timedelta(days=float(landmark))
        iv = self.intervals
        hit = iv[(iv["group"] == "pool") & (iv["start_offset"] <= landmark) & (landmark < iv["end_offset"])]
        out = hit[["patient_id", "hospitalization_id", "origin_time"]].copy()
        out["index_time"] = out["origin_time"] + landmark
        return out.sort_values("patient_id", kind="mergesort").reset_index(drop=True)

    def risk_set_rows(self, landmarks: "pd.Series | None" = None) -> pd.DataFrame:
        """Pool candidates' eligibility, cut at the landmarks: the counting-process rows of risk-set matching.

        Every candidate interval ``[start, end)`` is cut at each landmark L inside it into pieces
        ``[L, next landmark or end)``; pieces holding no landmark are dropped. Each piece holds
        exactly one landmark, at its start, so covariates derived as of ``index_time`` (= origin +
        L) are the candidate's covariates at that landmark. This is the ``candidates`` frame of
        ``controlarm.matching``'s ``risk_set_match`` (``start``/``stop`` in days from the origin).

        Parameters
        ----------
        landmarks : Series of float, optional
            Landmarks in days from the origin; default the trial patients' ``landmark_day``.

        Returns
        -------
        DataFrame
            ``patient_id, hospitalization_id, start, stop, index_time`` sorted by patient, start.
        """
        if landmarks is None:
            landmarks = self.landmarks["landmark_day"]
        marks = np.unique(np.asarray(pd.Series(landmarks).dropna(), dtype=float))
        iv = self.intervals[(self.intervals["group"] == "pool") & self.intervals["origin_time"].notna()]
        lo = np.searchsorted(marks, iv["start_day"].to_numpy(), "left")    # first landmark >= start
        hi = np.searchsorted(marks, iv["end_day"].to_numpy(), "left")      # first landmark >= end
        n = np.maximum(hi - lo, 0)
        rows = np.repeat(np.arange(len(iv)), n)
        j = np.repeat(lo, n) + (np.arange(len(rows)) - np.repeat(np.cumsum(n) - n, n))
        start = marks[j] if len(marks) else np.array([], dtype=float)
        last = j + 1 >= np.repeat(hi, n)
        stop = np.where(last, iv["end_day"].to_numpy()[rows], marks[np.minimum(j + 1, len(marks) - 1)] if len(marks) else 0.0)
        out = pd.DataFrame({
            "patient_id": iv["patient_id"].to_numpy()[rows],
            "hospitalization_id": iv["hospitalization_id"].to_numpy()[rows],
            "start": start, "stop": stop,
        })
        out["index_time"] = (iv["origin_time"].iloc[rows].reset_index(drop=True)
                             + pd.to_timedelta(out["start"], unit="D")).dt.round("us")
        return out.sort_values(["patient_id", "start"], kind="mergesort").reset_index(drop=True)


def derive_eligibility(sources: "Sources", study: "Study") -> Eligibility:
    """Eligibility intervals of every enrolled patient and the trial patients' landmarks.

    A patient is eligible at time t when the ``[index.pool]`` condition holds at t (within their
    enrolled hospitalization), t is before death and discharge, t lies in the calendar window
    ``[cohort.calendar_start, cohort.calendar_end + 1 day)`` and their age at t (whole days from
    birth to t's UTC date / 365.25, as everywhere) is within ``[age_min, age_max]``.

    Parameters
    ----------
    sources : Sources
    study : Study
        Uses ``index`` (``pool``, ``product``, ``risk_set_origin``), ``cohort`` and
        ``outcomes.max_gap_hours``.

    Returns
    -------
    Eligibility
    """
    sql = eligibility_sql(study)
    iv = sources.con.execute(sql).df()
    for col in ("start_time", "end_time", "origin_time"):
        iv[col] = pd.to_datetime(iv[col], utc=True)
    iv["start_offset"] = iv["start_time"] - iv["origin_time"]
    iv["end_offset"] = iv["end_time"] - iv["origin_time"]
    iv["start_day"] = iv["start_offset"] / _DAY
    iv["end_day"] = iv["end_offset"] / _DAY
    iv["_g"] = (iv["group"] != "trial").astype(int)
    iv = iv.sort_values(["_g", "patient_id", "start_time"], kind="mergesort").drop(columns="_g").reset_index(drop=True)

    lm = sources.con.execute(_landmark_sql(study)).df()
    for col in ("index_time", "origin_time"):
        lm[col] = pd.to_datetime(lm[col], utc=True)
    lm["landmark_offset"] = lm["index_time"] - lm["origin_time"]
    lm["landmark_day"] = lm["landmark_offset"] / _DAY
    trial_iv = iv[iv["group"] == "trial"]
    merged = lm[["patient_id", "index_time"]].merge(trial_iv[["patient_id", "start_time", "end_time"]],
                                                   on="patient_id", how="left")
    inside = (merged["start_time"] <= merged["index_time"]) & (merged["index_time"] < merged["end_time"])
    ok = set(merged.loc[inside, "patient_id"])
    lm["eligible_at_landmark"] = lm["patient_id"].isin(ok)
    lm = lm.sort_values("patient_id", kind="mergesort").reset_index(drop=True)
    return Eligibility(intervals=iv, landmarks=lm, origin=study.index.risk_set_origin)


def _origin_sql(study: "Study") -> str:
    if study.index.risk_set_origin == "icu_admission":
        return "SELECT hospitalization_id, min(in_dttm) AS origin FROM adt WHERE location_category = 'icu' GROUP BY hospitalization_id"
    return "SELECT hospitalization_id, admission_dttm AS origin FROM hospitalization"


def eligibility_sql(study: "Study") -> str:
    """SQL of the eligibility intervals (``patient_id, hospitalization_id, group, start_time,
    end_time, origin_time``); see :func:`derive_eligibility`."""
    c = study.cohort
    cond = condition_sql(study.index.pool, study.outcomes.max_gap_hours)
    lower = ["c.s"]
    upper = ["c.e", "coalesce(p.death_dttm, c.e)", "h.discharge_dttm"]
    if c.calendar_start:
        lower.append(f"CAST(TIMESTAMP '{c.calendar_start.isoformat()} 00:00:00' AS TIMESTAMP WITH TIME ZONE)")
    if c.calendar_end:
        end = pd.Timestamp(c.calendar_end) + pd.Timedelta(days=1)
        upper.append(f"CAST(TIMESTAMP '{end.date().isoformat()} 00:00:00' AS TIMESTAMP WITH TIME ZONE)")
    # age(t) = days(birth, date(t)) / 365.25: age >= age_min from the day birth + ceil(age_min * 365.25),
    # age <= age_max until the end of the day birth + floor(age_max * 365.25).
    lower.append(f"CAST(p.birth_date AS TIMESTAMP WITH TIME ZONE) + INTERVAL '{math.ceil(c.age_min * 365.25)}' DAY")
    if c.age_max is not None:
        upper.append(
            f"CAST(p.birth_date AS TIMESTAMP WITH TIME ZONE) + INTERVAL '{math.floor(c.age_max * 365.25) + 1}' DAY")
    return f"""
        WITH cond AS ({cond}),
        origin AS ({_origin_sql(study)}),
        clipped AS (
            SELECT e.patient_id, e.hospitalization_id, e.arm AS "group",
                   greatest({', '.join(lower)}) AS start_time,
                   least({', '.join(upper)}) AS end_time,
                   o.origin AS origin_time
            FROM enrollment e
            JOIN cond c ON c.hospitalization_id = e.hospitalization_id
            JOIN hospitalization h ON h.hospitalization_id = e.hospitalization_id
            JOIN patient p ON p.patient_id = e.patient_id
            LEFT JOIN origin o ON o.hospitalization_id = e.hospitalization_id
            WHERE p.birth_date IS NOT NULL
        )
        SELECT * FROM clipped WHERE start_time < end_time
        ORDER BY patient_id, start_time
    """


def _landmark_sql(study: "Study") -> str:
    return f"""
        WITH origin AS ({_origin_sql(study)}),
        first_admin AS (
            SELECT patient_id, min(admin_dttm) AS t FROM administration
            WHERE product = {sql_str(study.index.product)} GROUP BY patient_id
        )
        SELECT e.patient_id, e.hospitalization_id, f.t AS index_time, o.origin AS origin_time
        FROM enrollment e
        JOIN first_admin f ON f.patient_id = e.patient_id
        LEFT JOIN origin o ON o.hospitalization_id = e.hospitalization_id
        WHERE e.arm = 'trial'
    """
