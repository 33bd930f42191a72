"""estim: Bayesian estimates of unobserved illegal border crossings from checkpoint and apprehension records."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("estim")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"
