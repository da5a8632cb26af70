"""The installed fairpriv version (``0.0.0+unknown`` in a source tree never installed)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("fairpriv")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"
