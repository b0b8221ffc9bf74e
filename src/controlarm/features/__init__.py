"""The `features` room: baseline covariates as of the index."""

from ._baseline import derive_baseline

__all__ = ["derive_baseline"]
