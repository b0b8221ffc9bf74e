"""The `outcomes` room: endpoints relative to each patient's index."""

from ._derive import derive_endpoints, endpoint_definitions
from ._endpoints import Endpoint
from ._trajectories import derive_trajectories

__all__ = ["Endpoint", "derive_endpoints", "derive_trajectories", "endpoint_definitions"]
