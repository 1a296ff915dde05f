"""pitstop: predictive maintenance and self-healing operations."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("pitstop")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0"

__all__ = ["__version__"]
