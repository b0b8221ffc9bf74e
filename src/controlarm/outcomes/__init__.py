"""The `outcomes` room: daily status and endpoints relative to each patient's index."""

from ._derive import derive_endpoints, endpoint_definitions
from ._endpoints import Endpoint
from ._status import SUPPORT_LABELS, SUPPORT_LEVELS, derive_daily_status
from ._trajectories import derive_trajectories

__all__ = [
    "Endpoint",
    "SUPPORT_LABELS",
    "SUPPORT_LEVELS",
    "derive_daily_status",
    "derive_endpoints",
    "derive_trajectories",
    "endpoint_definitions",
]
