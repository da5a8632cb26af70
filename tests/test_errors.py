"""Every error the engine raises is a FairprivError (audit/_exceptions.py)."""

from __future__ import annotations

import ast
import builtins
import importlib
import pickle
import re
from pathlib import Path
from types import ModuleType

import pytest

import audit
from audit import ConfigError, DataError, FairprivError, InternalError, TrainingError

AUDIT_DIR = Path(audit.__file__).parent
BUILTIN_EXCEPTIONS = frozenset(
    name for name, obj in vars(builtins).items()
    if isinstance(obj, type) and issubclass(obj, BaseException)
)


def _is_abstract(func: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    for deco in func.decorator_list:
        target = deco.func if isinstance(deco, ast.Call) else deco
        name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")
        if name == "abstractmethod":
            return True
    return False


def bad_raises(source: str, module: ModuleType | None = None) -> list[tuple[int, str]]:
    """``(line, name)`` of each ``raise`` of an exception class that is not a FairprivError.

    Allowed: a bare ``raise``, re-raising a caught exception (a name that is not a
    class of the module or a built-in), and ``NotImplementedError`` in an abstract
    method. ``raise X(...) from exc`` is judged by ``X``.
    """
    tree = ast.parse(source)
    found: list[tuple[int, str]] = []

    def visit(node: ast.AST, abstract: bool) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            abstract = _is_abstract(node)
        if isinstance(node, ast.Raise) and node.exc is not None:
            target = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            name = (target.id if isinstance(target, ast.Name)
                    else target.attr if isinstance(target, ast.Attribute) else None)
            if name is not None:
                obj = getattr(module, name, None) if module is not None else None
                if isinstance(obj, type) and issubclass(obj, BaseException):
                    if not issubclass(obj, FairprivError):
                        found.append((node.lineno, name))
                elif name in BUILTIN_EXCEPTIONS and not (name == "NotImplementedError" and abstract):
                    found.append((node.lineno, name))
        for child in ast.iter_child_nodes(node):
            visit(child, abstract)

    visit(tree, False)
    return found


def _engine_modules() -> list[Path]:
    paths = sorted(AUDIT_DIR.rglob("*.py"))
    assert len(paths) > 30, "the walk must see the whole engine"
    return paths


def _module_name(path: Path) -> str:
    parts = path.relative_to(AUDIT_DIR.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_every_engine_raise_is_a_fairpriv_error() -> None:
    offenders = []
    for path in _engine_modules():
        module = importlib.import_module(_module_name(path))
        offenders += [f"{path.relative_to(AUDIT_DIR.parent)}:{line} raises {name}"
                      for line, name in bad_raises(path.read_text(encoding="utf-8"), module)]
    assert not offenders, "raise a ConfigError / DataError / TrainingError / InternalError instead:\n" + \
        "\n".join(offenders)


def test_the_raise_check_sees_builtins_and_allows_reraises() -> None:
    bad = """
def f(x):
    if x:
        raise ValueError("bad")
    raise KeyError
def g():
    try:
        pass
    except OSError as exc:
        raise RuntimeError("wrapped") from exc
def h():
    raise NotImplementedError
"""
    assert bad_raises(bad) == [(4, "ValueError"), (5, "KeyError"), (10, "RuntimeError"),
                               (12, "NotImplementedError")]
    good = """
import abc
class A(abc.ABC):
    @abc.abstractmethod
    def f(self):
        raise NotImplementedError
def g():
    try:
        pass
    except ValueError as exc:
        if exc.args:
            raise
        raise exc from None
def h():
    raise ConfigError("fine")
"""
    assert bad_raises(good) == []


def test_the_raise_check_resolves_classes_of_the_module() -> None:
    module = ModuleType("m")
    module.Oops = type("Oops", (Exception,), {})  # type: ignore[attr-defined]
    module.Fine = type("Fine", (ConfigError,), {})  # type: ignore[attr-defined]
    assert bad_raises("raise Oops('x')\nraise Fine('y')\n", module) == [(1, "Oops")]


def test_exception_tree() -> None:
    assert issubclass(ConfigError, ValueError) and issubclass(DataError, ValueError)
    assert issubclass(TrainingError, RuntimeError) and issubclass(InternalError, RuntimeError)
    for cls in (ConfigError, DataError, TrainingError, InternalError):
        assert issubclass(cls, FairprivError)
    assert "InternalError" in audit.__all__


def test_internal_error_asks_for_a_report() -> None:
    with pytest.raises(InternalError, match=r"^broken \(this is a bug in fairpriv, please report it\)$"):
        raise InternalError("broken")


def test_param_and_fix_hints_are_optional_and_survive_pickling() -> None:
    plain = DataError("no hint")
    assert plain.param is None and plain.fix is None and str(plain) == "no hint"
    hinted = DataError("merge them (small_groups='merge')", param="small_groups",
                       fix={"small_groups": "merge"})
    assert str(hinted) == "merge them (small_groups='merge')"
    copy = pickle.loads(pickle.dumps(hinted))
    assert type(copy) is DataError and str(copy) == str(hinted)
    assert copy.param == "small_groups" and copy.fix == {"small_groups": "merge"}


_FLAG = re.compile(r"(?<![\w-])--[a-z][a-z-]+")


def flag_mentions(source: str) -> list[tuple[int, str]]:
    """``(line, text)`` of string literals (docstrings aside) that spell a command-line flag."""
    tree = ast.parse(source)
    docstrings = {
        id(node.body[0].value) for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and id(node) not in docstrings and _FLAG.search(node.value)]


def test_engine_messages_name_parameters_not_flags() -> None:
    found = [f"{path.relative_to(AUDIT_DIR.parent)}:{line}: {text!r}"
             for path in _engine_modules() for line, text in flag_mentions(path.read_text("utf-8"))]
    assert not found, "name the Python parameter (small_groups='merge'); the CLI translates:\n" + \
        "\n".join(found)


def test_the_flag_check_sees_flags_in_messages() -> None:
    source = '"""Docstring with --flag is fine."""\nraise ConfigError(f"use {x} (CLI --small-groups merge)")\n'
    assert flag_mentions(source) == [(2, " (CLI --small-groups merge)")]
    assert flag_mentions('x = "a -- b, p=--1, small_groups=\'merge\'"\n') == []
