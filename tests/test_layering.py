"""Import layering, checked on the source (AST) of every module of audit/, reports/, app/ and cli/.

The layers, from the bottom:

* ``audit`` (the engine) never imports ``reports``, the app (``app``/``fairpriv_app``),
  the CLI (``cli``/``fairpriv_cli``), ``streamlit`` or ``click``.
* ``reports`` uses only the public ``audit`` API -- ``import audit``, ``from audit import
  <name in audit.__all__>``, ``from audit.defaults import <name in its __all__>`` -- and
  never the app, the CLI, ``streamlit`` or ``click``.
* ``app`` uses only the public ``audit`` and ``reports`` APIs (``from reports import <name in
  reports.__all__>``), never the CLI (``fairpriv_cli``, ``audit.cli``), imports its own
  modules as ``fairpriv_app.<module>`` and never edits ``sys.path``.
* ``cli`` is the composition root: it may import ``audit`` and ``reports``, public API only.

Every kind of import counts: module level and function local, ``importlib.import_module("...")``
and ``__import__("...")`` with a literal name, and attribute access through an imported
package (``audit.data._readers``). Each rule is also run on a small synthetic source, so a
rule that stopped firing fails here too.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: Layer -> its folder. The app and the CLI are installed under other names.
FOLDERS = {"audit": "audit", "reports": "reports", "app": "app", "cli": "cli"}
INSTALLED_AS = {"audit": "audit", "reports": "reports", "app": "fairpriv_app", "cli": "fairpriv_cli"}

# Private engine modules the CLI may import: none. Kept as a named, checked list so that
# an exception, if ever needed, is explicit (a stale entry fails the test below).
CLI_PRIVATE_IMPORTS: frozenset[tuple[str, str]] = frozenset()

ENGINE_NEVER = "audit never imports reports, the app, the CLI, streamlit or click"
REPORTS_NEVER = "reports never imports the app, the CLI, streamlit or click"
REPORTS_PUBLIC = ("reports uses only the public audit API: import audit, from audit import <name in "
                  "audit.__all__>, from audit.defaults import <name>")
APP_PUBLIC = ("app uses only the public audit and reports APIs: from audit import ..., from "
              "audit.defaults import ..., from reports import ... (names in their __all__)")
APP_NO_CLI = "app never imports the CLI (fairpriv_cli, cli, audit.cli)"
APP_OWN = "app imports its own modules as fairpriv_app.<module>, never through the script folder"
APP_SYS_PATH = "app never edits sys.path (import the app's helpers as fairpriv_app.<module>)"
CLI_PUBLIC = "cli uses only the public audit and reports APIs (names in their __all__)"


def _all_of(path: Path) -> frozenset[str]:
    """The literal ``__all__`` of a module, read from its source."""
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if (isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__"
                                                 for t in node.targets)):
            return frozenset(ast.literal_eval(node.value))
    raise AssertionError(f"{path} has no literal __all__")


#: Module -> the names it exports. Only these modules are public import targets.
PUBLIC = {
    "audit": _all_of(ROOT / "audit" / "__init__.py"),
    "audit.defaults": _all_of(ROOT / "audit" / "defaults.py"),
    "reports": _all_of(ROOT / "reports" / "__init__.py"),
}
#: Top-level names that only resolve through the app's own folder on sys.path.
APP_LOCAL = frozenset({"app"} | {p.stem for p in (ROOT / "app").iterdir()
                                 if p.name != "__init__.py" and (p.suffix == ".py" or p.is_dir())
                                 and not p.name.startswith((".", "__"))})


@dataclass(frozen=True)
class Use:
    """One import (or import-like access) in a file."""

    line: int
    module: str  # absolute module, e.g. "audit.data._readers"
    names: tuple[str, ...]  # names taken from it by ``from module import ...``; () otherwise
    text: str  # the statement as written, whitespace collapsed


def _layer_of(module: str) -> str | None:
    """Which layer (or forbidden third party) a module belongs to; None for anything else."""
    top = module.split(".")[0]
    if module == "audit.cli" or module.startswith("audit.cli."):
        return "cli"
    return {"audit": "audit", "reports": "reports", "fairpriv_app": "app", "app": "app",
            "fairpriv_cli": "cli", "cli": "cli", "streamlit": "streamlit", "click": "click"}.get(top)


def _package_of(path: str) -> str:
    """Dotted package a file's relative imports start from: app/views/x.py -> fairpriv_app.views."""
    top, *rest = Path(path).with_suffix("").parts
    # A package's __init__ and its modules alike resolve "." to the folder they are in.
    return ".".join([INSTALLED_AS.get(top, top), *rest][:-1])


def _text(source: str, node: ast.AST) -> str:
    return " ".join((ast.get_source_segment(source, node) or ast.unparse(node)).split())


def _literal_import(node: ast.Call) -> str | None:
    """The module of ``importlib.import_module("m")``, ``import_module("m")``, ``__import__("m")``."""
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
    if name not in ("import_module", "__import__") or not node.args:
        return None
    arg = node.args[0]
    return arg.value if isinstance(arg, ast.Constant) and isinstance(arg.value, str) else None


def uses(source: str, path: str) -> Iterator[Use]:
    """Every import in ``source`` (the file ``path``, relative to the repository root)."""
    tree = ast.parse(source, filename=path)
    package = _package_of(path)
    aliases: dict[str, str] = {}  # local name -> public module it is bound to (import audit as a)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Use(node.lineno, alias.name, (), _text(source, node))
                bound = alias.asname or alias.name.split(".")[0]
                aliases[bound] = alias.name if alias.asname else alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            names = tuple(a.name for a in node.names)
            yield Use(node.lineno, module, names, _text(source, node))
            for alias in node.names:
                if f"{module}.{alias.name}" in PUBLIC:
                    aliases[alias.asname or alias.name] = f"{module}.{alias.name}"
        elif isinstance(node, ast.Call) and (module := _literal_import(node)) is not None:
            yield Use(node.lineno, module, (), _text(source, node))
    # Attribute access through a public package bound by an import: audit.data._readers.
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and aliases.get(node.value.id) in PUBLIC):
            yield Use(node.lineno, aliases[node.value.id], (node.attr,), _text(source, node))


#: list methods that change sys.path in place.
_MUTATORS = frozenset({"insert", "append", "extend", "remove", "pop", "clear", "reverse", "sort",
                       "__setitem__", "__delitem__", "__iadd__"})


def _is_sys_path(node: ast.AST, *, item: bool = False) -> bool:
    """Whether ``node`` is ``sys.path`` (or, with ``item``, also ``sys.path[...]``)."""
    if item and isinstance(node, ast.Subscript):
        node = node.value
    return (isinstance(node, ast.Attribute) and node.attr == "path" and isinstance(node.value, ast.Name)
            and node.value.id == "sys")


def sys_path_edits(source: str, path: str) -> Iterator[tuple[int, str]]:
    """``sys.path.insert(...)`` (or another in-place list method), ``sys.path = ...``, ``sys.path += ...``,
    ``sys.path[...] = ...``, ``from sys import path`` and ``site.addsitedir(...)``."""
    for node in ast.walk(ast.parse(source, filename=path)):
        hit = False
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            hit = (node.func.attr in _MUTATORS and _is_sys_path(node.func.value)) or (
                node.func.attr == "addsitedir" and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "site")
        elif isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign | ast.Delete):
            targets = node.targets if isinstance(node, ast.Assign | ast.Delete) else [node.target]
            hit = any(_is_sys_path(t, item=True) for t in targets)
        elif isinstance(node, ast.ImportFrom) and node.module == "sys":
            hit = any(a.name == "path" for a in node.names)
        if hit:
            yield node.lineno, _text(source, node)


def _public(use: Use) -> bool:
    """Whether every target of ``use`` is a public module or a name in its ``__all__``."""
    if not use.names:
        return use.module in PUBLIC
    return use.module in PUBLIC and all(n in PUBLIC[use.module] for n in use.names)


def violations(source: str, path: str) -> list[str]:
    """Every broken rule in ``source``, as ``path:line: statement -- rule``, by line."""
    layer = Path(path).parts[0]
    found: list[tuple[int, str]] = []

    def flag(line: int, text: str, rule: str) -> None:
        found.append((line, f"{path}:{line}: {text} -- {rule}"))

    for use in uses(source, path):
        target = _layer_of(use.module)
        if layer == "app" and use.module.split(".")[0] in APP_LOCAL:
            flag(use.line, use.text, APP_OWN)
            continue
        if target is None or target == layer:
            continue
        if layer == "audit":
            flag(use.line, use.text, ENGINE_NEVER)
        elif layer == "reports":
            if target != "audit":
                flag(use.line, use.text, REPORTS_NEVER)
            elif not _public(use):
                flag(use.line, use.text, REPORTS_PUBLIC)
        elif layer == "app":
            if target == "cli":
                flag(use.line, use.text, APP_NO_CLI)
            elif target in ("audit", "reports") and not _public(use):
                flag(use.line, use.text, APP_PUBLIC)
        elif (layer == "cli" and target in ("audit", "reports") and not _public(use)
              and (path, use.module) not in CLI_PRIVATE_IMPORTS):
            flag(use.line, use.text, CLI_PUBLIC)
    if layer == "app":
        for line, text in sys_path_edits(source, path):
            flag(line, text, APP_SYS_PATH)
    return [message for _, message in sorted(found)]


def sources() -> list[str]:
    files = sorted(p for folder in FOLDERS.values() for p in (ROOT / folder).rglob("*.py")
                   if "__pycache__" not in p.parts)
    return [p.relative_to(ROOT).as_posix() for p in files]


def test_the_scan_sees_every_layer() -> None:
    files = sources()
    for expected in ("audit/__init__.py", "audit/data/_readers.py", "reports/__init__.py",
                     "app/main.py", "app/common.py", "app/views/setup.py", "cli/main.py"):
        assert expected in files
    assert {"read_table", "parse_hidden_layers", "make_arm", "defaults"} <= PUBLIC["audit"]
    assert {"build_report", "render_pdf_bytes", "render_html_text", "tradeoff_points"} <= PUBLIC["reports"]


@pytest.mark.parametrize("path", sources())
def test_layering(path: str) -> None:
    found = violations((ROOT / path).read_text(encoding="utf-8"), path)
    assert not found, "import layering broken:\n" + "\n".join(found)


def test_cli_allowlist_has_no_stale_entries() -> None:
    """Every allowlisted private import is still in the CLI: drop entries as the CLI is fixed."""
    present = {(path, use.module) for path in sources() if path.startswith("cli/")
               for use in uses((ROOT / path).read_text(encoding="utf-8"), path)}
    stale = sorted(CLI_PRIVATE_IMPORTS - present)
    assert not stale, f"no longer imported; remove from CLI_PRIVATE_IMPORTS: {stale}"


# (file, source, rule, offending statement, line): each rule fires, naming file, line and import.
BROKEN = [
    ("audit/x.py", "import reports", ENGINE_NEVER, "import reports", 1),
    ("audit/x.py", "def f():\n    from fairpriv_app.common import show_error\n", ENGINE_NEVER,
     "from fairpriv_app.common import show_error", 2),
    ("audit/x.py", "from fairpriv_cli.main import main", ENGINE_NEVER, "from fairpriv_cli.main import main", 1),
    ("audit/x.py", "import streamlit as st", ENGINE_NEVER, "import streamlit as st", 1),
    ("audit/x.py", "import click", ENGINE_NEVER, "import click", 1),
    ("audit/pipeline/x.py", "import importlib\n\nimportlib.import_module('reports')", ENGINE_NEVER,
     "importlib.import_module('reports')", 3),
    ("reports/x.py", "from audit._exceptions import ConfigError", REPORTS_PUBLIC,
     "from audit._exceptions import ConfigError", 1),
    ("reports/x.py", "from audit.data._readers import read_table", REPORTS_PUBLIC,
     "from audit.data._readers import read_table", 1),
    ("reports/x.py", "from audit import _stats", REPORTS_PUBLIC, "from audit import _stats", 1),
    ("reports/x.py", "import audit.training", REPORTS_PUBLIC, "import audit.training", 1),
    ("reports/x.py", "import audit\n\nx = audit.data._readers.read_table", REPORTS_PUBLIC, "audit.data", 3),
    ("reports/x.py", "def f():\n    return __import__('audit._stats')", REPORTS_PUBLIC,
     "__import__('audit._stats')", 2),
    ("reports/x.py", "import streamlit", REPORTS_NEVER, "import streamlit", 1),
    ("reports/x.py", "from fairpriv_cli import main", REPORTS_NEVER, "from fairpriv_cli import main", 1),
    ("reports/x.py", "from app import common", REPORTS_NEVER, "from app import common", 1),
    ("app/views/x.py", "from reports import _figures", APP_PUBLIC, "from reports import _figures", 1),
    ("app/views/x.py", "from reports._content import tradeoff_points", APP_PUBLIC,
     "from reports._content import tradeoff_points", 1),
    ("app/common.py", "from audit.data._readers import read_table", APP_PUBLIC,
     "from audit.data._readers import read_table", 1),
    ("app/views/x.py", "from importlib import import_module\nm = import_module('reports._pdf')", APP_PUBLIC,
     "import_module('reports._pdf')", 2),
    ("app/views/x.py", "from audit import defaults as d\nx = d._private", APP_PUBLIC, "d._private", 2),
    ("app/views/x.py", "from fairpriv_cli.main import parse_hidden", APP_NO_CLI,
     "from fairpriv_cli.main import parse_hidden", 1),
    ("app/views/x.py", "from audit.cli import parse_hidden", APP_NO_CLI, "from audit.cli import parse_hidden", 1),
    ("app/views/x.py", "from common import show_error", APP_OWN, "from common import show_error", 1),
    ("app/views/x.py", "import app.common", APP_OWN, "import app.common", 1),
    ("app/views/x.py", "import sys\nsys.path.insert(0, 'app')", APP_SYS_PATH, "sys.path.insert(0, 'app')", 2),
    ("app/main.py", "import sys\nsys.path.append('x')", APP_SYS_PATH, "sys.path.append('x')", 2),
    ("app/main.py", "import sys\nsys.path = ['x', *sys.path]", APP_SYS_PATH, "sys.path = ['x', *sys.path]", 2),
    ("app/main.py", "import sys\nsys.path += ['x']", APP_SYS_PATH, "sys.path += ['x']", 2),
    ("app/main.py", "import sys\nsys.path[:0] = ['x']", APP_SYS_PATH, "sys.path[:0] = ['x']", 2),
    ("app/main.py", "import site\nsite.addsitedir('x')", APP_SYS_PATH, "site.addsitedir('x')", 2),
    ("app/main.py", "from sys import path", APP_SYS_PATH, "from sys import path", 1),
    ("cli/other.py", "from audit.pipeline._runner import run_audit", CLI_PUBLIC,
     "from audit.pipeline._runner import run_audit", 1),
    ("cli/other.py", "def f():\n    from reports._pdf import write_pdf\n", CLI_PUBLIC,
     "from reports._pdf import write_pdf", 2),
]


@pytest.mark.parametrize(("path", "source", "rule", "text", "line"), BROKEN,
                         ids=[f"{b[0]}:{b[3]}" for b in BROKEN])
def test_each_rule_fires(path: str, source: str, rule: str, text: str, line: int) -> None:
    found = violations(source, path)
    assert f"{path}:{line}: {text} -- {rule}" in found, found


CLEAN = [
    ("audit/x.py", "from ._exceptions import ConfigError\nfrom audit.data._readers import read_table\n"
                   "import numpy, torch"),
    ("audit/data/x.py", "from .._exceptions import ConfigError\nfrom ..defaults import DEFAULT_SEEDS"),
    ("reports/x.py", "import audit\nfrom audit import AuditResult, defaults\n"
                     "from audit.defaults import DEFAULT_SEEDS\nfrom ._content import build_report\n"
                     "import matplotlib.pyplot as plt\nx = audit.run_audit"),
    ("app/views/x.py", "import streamlit as st\nimport torch\nfrom fairpriv_app.common import show_error\n"
                       "from audit import defaults as d, make_arm\nfrom reports import build_report\n"
                       "import sys\nx = (d.DEFAULT_SEEDS, sys.executable, sys.path.index('x'))\n"
                       "y = sys.path[0].startswith('/')"),
    ("cli/other.py", "import click\nfrom audit import run_audit\nfrom reports import render_pdf\n"
                     "from .main import main"),
]


@pytest.mark.parametrize(("path", "source"), CLEAN, ids=[c[0] for c in CLEAN])
def test_public_imports_pass(path: str, source: str) -> None:
    assert violations(source, path) == []


def test_the_cli_may_not_import_private_modules() -> None:
    """With an empty allowlist a private engine import in the CLI is flagged anywhere."""
    assert violations("from audit._exceptions import ConfigError", "cli/main.py") != []
    assert violations("from audit import ConfigError", "cli/main.py") == []
