"""The ``fairpriv`` command line: the composition root of the engine (:mod:`audit`) and
the renderers (:mod:`reports`). Installed as the package ``fairpriv_cli``."""

from .main import main

__all__ = ["main"]
