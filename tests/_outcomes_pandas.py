"""An independent, plain-pandas implementation of the outcome definitions, for cross-checks.

Written from the definitions in ``controlarm.outcomes`` (module docstrings), not from its SQL, and on
purpose in a different shape: pandas Timestamps and Timedeltas instead of integer microseconds, every
record of every hospitalization (no time window), intervals expanded into one row per day and
grouped by patient and day (no bitmasks), and unit factors written out by hand (no pint).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

DAY = pd.Timedelta(days=1)

#: D-dimer unit -> factor to µg/L FEU (docs/data-model.md); anything else cannot be harmonised.
DIMER_FACTORS = {"ng/mL": 1.0, "ug/L": 1.0, "µg/L": 1.0, "mg/L": 1000.0, "mg/L FEU": 1000.0, "ug/L FEU": 1.0,
                 "ng/mL FEU": 1.0, "ug/L DDU": 2.0, "ng/mL DDU": 2.0, "mg/L DDU": 2000.0}
LEVEL = {"Room Air": 0, "Nasal Cannula": 1, "Face Mask": 1, "Trach Collar": 1, "Other": 1,
         "High Flow NC": 2, "NIPPV": 3, "CPAP": 3, "IMV": 4}
FREE_KINDS = {"imv": {4, 5}, "hfno": {2}, "oxygen": {1, 2, 3, 4, 5}, "icu": {"icu"}, "hospital": {"hosp"}}


def _holding(rows: pd.DataFrame, hosp: pd.DataFrame, gap: pd.Timedelta) -> pd.DataFrame:
    """[start, end) of each record: until the next record of the hospitalization, the gap, discharge."""
    r = rows.merge(hosp[["hospitalization_id", "discharge_dttm"]], on="hospitalization_id", how="inner")
    r = r.sort_values(["hospitalization_id", "recorded_dttm", "device_category"], na_position="last", kind="mergesort")
    nxt = r.groupby("hospitalization_id", sort=False)["recorded_dttm"].shift(-1)
    end = nxt.fillna(r["discharge_dttm"])
    end = np.minimum(end, r["recorded_dttm"] + gap)
    end = np.minimum(end, r["discharge_dttm"])
    return r.assign(start=r["recorded_dttm"], end=end)


def reference_endpoints(tables: dict[str, pd.DataFrame], index: pd.DataFrame, study) -> pd.DataFrame:
    """Endpoint frame as :func:`controlarm.outcomes.derive_endpoints` defines it (same columns)."""
    o = study.outcomes
    gap = pd.Timedelta(hours=o.max_gap_hours)
    ix = index[["patient_id", "hospitalization_id", "index_time"]].reset_index(drop=True).copy()
    ix["ord"] = np.arange(len(ix))
    hosp = tables["hospitalization"]
    pat = tables["patient"].set_index("patient_id")

    # every hospitalization of each index row's patient
    hs = ix[["ord", "patient_id", "index_time"]].merge(hosp, on="patient_id", how="inner")

    # intervals with a kind: support level 1-5, "icu", "hosp"
    resp = _holding(tables["respiratory_support"], hosp, gap)
    resp["kind"] = resp["device_category"].map(lambda d: None if pd.isna(d) else LEVEL.get(d, 1))
    ecmo = tables["ecmo_mcs"]
    ecmo = ecmo[ecmo["device_category"].str.upper().str.contains("ECMO", na=False)]
    ecmo = _holding(ecmo, hosp, gap).assign(kind=5)
    adt = tables["adt"]
    icu = adt[adt["location_category"] == "icu"].rename(columns={"in_dttm": "start", "out_dttm": "end"}).assign(kind="icu")
    stay = hosp.rename(columns={"admission_dttm": "start", "discharge_dttm": "end"}).assign(kind="hosp")
    ivals = pd.concat([x[["hospitalization_id", "start", "end", "kind"]] for x in (resp, ecmo, icu, stay)],
                      ignore_index=True)
    ivals = ivals[ivals["kind"].notna() & (ivals["kind"] != 0) & (ivals["end"] > ivals["start"])]
    iv = hs[["ord", "hospitalization_id", "index_time"]].merge(ivals, on="hospitalization_id")

    # vital status
    death = ix["patient_id"].map(pat["death_dttm"])
    has_p = ix["patient_id"].isin(pat.index)
    if study.data.cutoff is not None:
        known = pd.Series(pd.Timestamp(study.data.cutoff, tz="UTC"), index=ix.index)
    else:
        known = ix["ord"].map(hs.groupby("ord")["discharge_dttm"].max())
    follow = death.fillna(known)

    out = pd.DataFrame({"patient_id": ix["patient_id"]})
    for n in o.survival_days:
        at = ix["index_time"] + n * DAY
        out[f"alive_d{n}"] = np.where(death <= at, 0.0, np.where(follow >= at, 1.0, np.nan))
    hmax = max(o.survival_days) if o.survival_days else o.free_days_horizon
    if o.survival_days:
        end = ix["index_time"] + hmax * DAY
        out["death_time_days"] = (np.minimum(follow, end) - ix["index_time"]) / DAY
        out["death_event"] = (death <= end).astype(float)
    if o.need_imv:
        inv = iv[iv["kind"].isin([4, 5])]
        at0 = inv[(inv["start"] <= inv["index_time"]) & (inv["index_time"] < inv["end"])]["ord"]
        after = inv[(inv["end"] > inv["index_time"]) & (inv["start"] < inv["index_time"] + hmax * DAY)]["ord"]
        out["need_imv"] = np.where(ix["ord"].isin(set(at0)), np.nan, ix["ord"].isin(set(after)).astype(float))

    # days touched by each interval: one row per (ord, day, kind)
    days_needed = max([o.free_days_horizon if o.free_days else 0, *o.who_scale_days])
    daily = expand_days(iv, days_needed)

    h = o.free_days_horizon
    # alive through the end of day d (d = 1..h): no death at or before index + d days
    idx_ns = _ns(ix["index_time"])
    death_ns = _ns(death)
    no_death = death.isna().to_numpy()
    day_ns = DAY.value
    grid = idx_ns[:, None] + np.arange(1, h + 1)[None, :] * day_ns
    alive_through = no_death[:, None] | (death_ns[:, None] > grid)
    dead = (death <= ix["index_time"] + h * DAY).to_numpy()
    for key in o.free_days:
        busy = daily[daily["kind"].isin(FREE_KINDS[key]) & (daily["day"] <= h)]
        busy_m = np.zeros((len(ix), h), dtype=bool)
        busy_m[busy["ord"].to_numpy(dtype=int), busy["day"].to_numpy(dtype=int) - 1] = True
        days_free = (alive_through & ~busy_m).sum(axis=1).astype(float)
        out[f"{key}_free_days_{h}"] = np.where(dead, float(o.free_days_death_value), days_free)
        out[f"_{key}_alive"] = np.where(dead, 0.0, 1.0)
        out[f"_{key}_days"] = days_free

    for n in o.who_scale_days:
        day = daily[daily["day"] == n]
        top = day[day["kind"].isin([1, 2, 3, 4, 5])].groupby("ord")["kind"].max()
        in_h = set(day.loc[day["kind"] == "hosp", "ord"])
        score = ix["ord"].map(top).map({5: 9.0, 4: 7.0, 3: 6.0, 2: 6.0, 1: 5.0})
        score = score.where(score.notna(), np.where(ix["ord"].isin(in_h), 4.0, 3.0))
        at = ix["index_time"] + n * DAY
        score = np.where(death <= at, 10.0, np.where(follow < at, np.nan, score))
        out[f"who_d{n}"] = score

    labs = tables["labs"].copy()
    factor = labs["reference_unit"].map(DIMER_FACTORS)
    labs["value"] = np.where(labs["lab_category"] == "d_dimer", labs["lab_value_numeric"] * factor,
                             labs["lab_value_numeric"])
    labs = labs[labs["value"].notna()]
    lab_rows = hs[["ord", "hospitalization_id", "index_time"]].merge(labs, on="hospitalization_id")
    for lab in o.labs:
        cand = lab_rows[lab_rows["lab_category"] == lab.category].copy()
        cand["dt"] = cand["lab_collect_dttm"] - (cand["index_time"] + lab.day * DAY)
        cand = cand[cand["dt"].abs() <= pd.Timedelta(days=lab.window_days)]
        cand["adt"] = cand["dt"].abs()
        cand["neg"] = -cand["value"]
        best = cand.sort_values(["ord", "adt", "dt", "neg"], kind="mergesort").drop_duplicates("ord")
        out[f"{lab.category}_d{lab.day}"] = ix["ord"].map(best.set_index("ord")["value"]).astype(float)

    for key in o.free_days:
        out[f"{key}_free_days_{h}_alive"] = out.pop(f"_{key}_alive")
        out[f"{key}_free_days_{h}_days"] = out.pop(f"_{key}_days")
    # no patient row: nothing is known about vital status
    vital = [c for c in out.columns[1:] if c.startswith(("alive_", "death_", "who_")) or "_free_days_" in c]
    out.loc[~has_p.to_numpy(), vital] = np.nan
    return out


def _ns(times: pd.Series) -> np.ndarray:
    """Nanoseconds since the epoch (NaT -> the minimum int64)."""
    t = pd.to_datetime(times, utc=True).dt.tz_localize(None)
    return t.to_numpy(dtype="datetime64[ns]").astype(np.int64)


def expand_days(iv: pd.DataFrame, days: int) -> pd.DataFrame:
    """One row per (ord, day, kind) for every day 1..days an interval touches."""
    if days <= 0 or iv.empty:
        return pd.DataFrame({"ord": [], "day": [], "kind": []})
    rel_s = iv["start"] - iv["index_time"]
    rel_e = iv["end"] - iv["index_time"]
    keep = (rel_e > pd.Timedelta(0)) & (rel_s < days * DAY)
    iv, rel_s, rel_e = iv[keep], rel_s[keep], rel_e[keep]
    first = np.maximum(rel_s // DAY, 0) + 1              # 1-based day of the start
    last = np.minimum(-((-rel_e) // DAY), days)           # ceil(end / day): the day holding end - 1µs
    n = (last - first + 1).astype(int).to_numpy()
    rows = np.repeat(np.arange(len(iv)), n)
    offs = np.arange(len(rows)) - np.repeat(np.cumsum(n) - n, n)
    return pd.DataFrame({
        "ord": iv["ord"].to_numpy()[rows],
        "day": first.to_numpy()[rows] + offs,
        "kind": iv["kind"].to_numpy()[rows],
    })
