"""Plan room: shared validation and helpers (alpha, power, allocation, dropout)."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from ..errors import InputError

__all__ = ["check_design", "z_values", "inflate", "mc_se", "split"]


def check_design(alpha: float, power: float, allocation: float, dropout: float) -> None:
    if not 0 < alpha < 1:
        raise InputError(f"alpha must be in (0, 1); got {alpha!r}")
    if not 0 < power < 1:
        raise InputError(f"power must be in (0, 1); got {power!r}")
    if not 0.1 <= allocation <= 10:
        raise InputError("allocation (treated per control, e.g. 2 for 2:1) must be from 0.1 to "
                         f"10; got {allocation!r}")
    if not 0 <= dropout < 1:
        raise InputError(f"dropout must be in [0, 1); got {dropout!r}")


def z_values(alpha: float, power: float) -> tuple[float, float]:
    """Two-sided ``z_{1 - alpha/2}`` and ``z_{power}``."""
    return float(stats.norm.isf(alpha / 2)), float(stats.norm.ppf(power))


def split(n_control: int, allocation: float) -> int:
    """Treated patients for ``n_control`` controls at ``allocation`` treated per control."""
    return int(math.ceil(n_control * allocation - 1e-9))


def inflate(n: int, dropout: float) -> int:
    return int(math.ceil(n / (1 - dropout) - 1e-9))


def mc_se(p: float, n: int) -> float:
    return float(math.sqrt(max(p * (1 - p), 0.0) / n))


def smallest_n(power_at, target: float, lo: int, hi: int) -> int:
    """Smallest ``n`` in ``[lo, hi]`` with ``power_at(n) >= target`` (bisection; monotone)."""
    if power_at(hi) < target:
        return hi
    while lo < hi:
        mid = (lo + hi) // 2
        if power_at(mid) >= target:
            hi = mid
        else:
            lo = mid + 1
    return lo


def rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)
