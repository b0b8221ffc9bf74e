"""controlarm: a matched external control arm for a small single-arm trial, end to end."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("controlarm")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
