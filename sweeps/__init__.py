"""Sweeps of photonic-network trials: specs, Ray execution, the Parquet store, the CLI."""

from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("insitu")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
