"""One JSON-safe conversion shared by every room that writes JSON (results, safety, the match command).

Why one place: ``results.json`` must be byte-deterministic and valid JSON, so NaN and infinity become
``null``, numpy/pandas scalars become Python numbers and timestamps become ISO 8601 text, the same way
everywhere.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

__all__ = ["json_safe"]


def json_safe(value: Any) -> Any:
    """A plain JSON value: dict keys as text, NaN/inf/NA/NaT -> None, numpy scalars -> Python."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        try:
            value = value.item()
        except (ValueError, AttributeError):
            pass
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
