"""Endpoint descriptors: what each column of the endpoint frame means.

The outcomes room derives one row per patient; each ``Endpoint`` names a column of that frame,
its kind and its definition in words, so the analysis and report rooms never guess.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["Endpoint"]


@dataclass(frozen=True)
class Endpoint:
    """One analysable endpoint.

    Parameters
    ----------
    name : str
        Identifier used in ``results.json`` (for example ``"alive_d28"``).
    label : str
        Human label for tables ("Alive at day 28").
    kind : {"binary", "time_to_event", "continuous", "count"}
        Binary columns hold 1/0 (NaN when not evaluable); count columns hold integers
        (free days); time-to-event uses ``column`` for the time (days) and ``event_column``
        for the event indicator (1 = event, 0 = censored).
    column : str
        Column in the endpoint frame.
    event_column : str or None
        Event indicator column for time-to-event endpoints.
    definition : str
        The definition in words, shown in the report and ``results.json``.
    unit : str
        Unit of a continuous endpoint, or "" when none.
    higher_is_better : bool
        Direction, used to word the results.
    """

    name: str
    label: str
    kind: Literal["binary", "time_to_event", "continuous", "count"]
    column: str
    definition: str
    event_column: str | None = None
    unit: str = ""
    higher_is_better: bool = True
