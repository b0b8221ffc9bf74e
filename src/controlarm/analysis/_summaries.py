"""Analysis room: descriptive statistics of one outcome per arm (``ArmSummary``).

Plain numpy; nothing here needs a library beyond it. Each patient counts once per arm (a control
reused by matching with replacement is not double-counted) and missing outcomes are counted in
``n_missing``. Quartiles use linear interpolation (Hyndman & Fan type 7), R's and numpy's default.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._results import ArmSummary
from ._sets import arms

__all__ = ["summarise_arms"]


def summarise_arms(endpoints: pd.DataFrame, endpoint) -> tuple[ArmSummary, ArmSummary]:
    """``ArmSummary`` for the treated and control arms of one endpoint.

    Binary endpoints fill ``events`` (count of 1) and ``proportion``; time-to-event endpoints fill
    ``events`` and ``proportion`` from the event indicator (crude, ignoring censoring; the
    Kaplan-Meier estimates are separate); continuous and count endpoints fill the median,
    quartiles, mean, SD (n - 1), min and max.

    References
    ----------
    Hyndman RJ, Fan Y. Sample quantiles in statistical packages. Am Stat 1996;50:361-365.
    doi:10.1080/00031305.1996.10473566
    """
    event_column = endpoint.event_column if endpoint.kind == "time_to_event" else None
    a = arms(endpoints, endpoint.column, event_column)
    out = []
    for arm in ("treated", "control"):
        d = a[arm]
        n, miss = len(d), a["n_missing"][arm]
        if endpoint.kind in ("binary", "time_to_event"):
            x = d["event" if endpoint.kind == "time_to_event" else "y"].to_numpy()
            events = int((x == 1).sum())
            out.append(ArmSummary(arm=arm, n=n, n_missing=miss, events=events,
                                  proportion=events / n if n else None))
            continue
        y = d["y"].to_numpy(dtype=float)
        if n == 0:
            out.append(ArmSummary(arm=arm, n=0, n_missing=miss))
            continue
        q1, med, q3 = np.percentile(y, [25, 50, 75])
        out.append(ArmSummary(
            arm=arm, n=n, n_missing=miss, median=float(med), q1=float(q1), q3=float(q3),
            mean=float(y.mean()), sd=float(y.std(ddof=1)) if n > 1 else None,
            min=float(y.min()), max=float(y.max()),
        ))
    return out[0], out[1]
