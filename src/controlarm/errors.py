"""Exceptions and warnings of controlarm: one small tree, shared by every room.

A user's mistake (a bad study file, a broken table) raises an ``InputError`` or a
``DataContractError``; the CLI turns them into one clear message and exit code 2, never a
traceback. Everything else is a bug and is allowed to surface as one.
"""

from __future__ import annotations

__all__ = [
    "ControlarmError",
    "InputError",
    "DataContractError",
    "SmallSampleWarning",
    "BalanceWarning",
    "ApproximationWarning",
    "PublishedStyleWarning",
]


class ControlarmError(Exception):
    """Base class of every error controlarm raises on purpose."""


class InputError(ControlarmError, ValueError):
    """A study file, an argument or an option is wrong. The message says where and how to fix it."""


class DataContractError(ControlarmError):
    """Input tables break the data contract (docs/data-model.md).

    Parameters
    ----------
    problems : list of str
        One line per problem: table, column, offending rows or ids, and the fix.
    """

    def __init__(self, problems: list[str] | str):
        if isinstance(problems, str):
            problems = [problems]
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class SmallSampleWarning(UserWarning):
    """A statistic rests on very few observations or events."""


class BalanceWarning(UserWarning):
    """A covariate stays imbalanced after matching (|SMD| above the threshold)."""


class ApproximationWarning(UserWarning):
    """An asymptotic approximation was used where an exact method was not feasible."""


class PublishedStyleWarning(UserWarning):
    """A published-style analysis that ignores the matched structure was computed on request."""
