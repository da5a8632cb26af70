"""Every error the engine raises is a FairprivError (audit/_exceptions.py)."""

from __future__ import annotations

import ast
import builtins
import importlib
import pickle
import re
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
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


# --- structured hints (param / fix) on messages that name a Python parameter
#
# Front ends translate engine messages through ``exc.param`` and ``exc.fix`` (the CLI into
# flags, the app into widget labels), so a message that tells the user to pass or use
# ``name=...`` must say which parameter it is about, and one that spells a value to use
# (``name='value'``) must offer it as ``fix``.

_KEYWORD = re.compile(r"(?<![\w.-])([a-z_][a-z0-9_]*)=")
_VALUE = re.compile(r"(?<![\w.-])([a-z_][a-z0-9_]*)=('[^']*'|-?\d[\w.]*)")
#: (module, spelling) -> why the message spells a value without offering it as ``fix``.
NO_FIX: dict[tuple[str, str], str] = {
    ("audit/arms/_arms.py", "rates='auto'"): "two alternatives (an example mapping or 'auto'), not one fix; "
                                             "or it describes the arm as given",
    ("audit/training/_stacked_mlp.py", "per_sample='vmap'"): "describes the mode at fault",
}


def _message_text(call: ast.Call) -> str:
    """The literal text of a raise's message; formatted values read as ``{}``."""
    text = ""
    for arg in call.args[:1]:
        for node in ast.walk(arg):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                text += node.value
            elif isinstance(node, ast.FormattedValue):
                text += "{}"
    return text


def _hinted_raises() -> list[tuple[str, int, str, set[str]]]:
    """``(module, line, message text, keywords of the call)`` of every engine raise."""
    found = []
    for path in _engine_modules():
        rel = str(path.relative_to(AUDIT_DIR.parent))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
                keywords = {k.arg for k in node.exc.keywords if k.arg}
                found.append((rel, node.lineno, _message_text(node.exc), keywords))
    return found


def test_messages_that_name_a_parameter_carry_param_and_fix() -> None:
    no_param, no_fix, used = [], [], set()
    for rel, line, text, keywords in _hinted_raises():
        if _KEYWORD.search(text) and "param" not in keywords:
            no_param.append(f"{rel}:{line}: {text[:90]!r}")
        for m in _VALUE.finditer(text):
            if "fix" in keywords:
                continue
            if (rel, m.group(0)) in NO_FIX:
                used.add((rel, m.group(0)))
            else:
                no_fix.append(f"{rel}:{line}: {m.group(0)} in {text[:90]!r}")
    assert not no_param, "messages naming name= need param=:\n" + "\n".join(no_param)
    assert not no_fix, "messages spelling name=value need fix= (or a NO_FIX reason):\n" + "\n".join(no_fix)
    assert used == set(NO_FIX), f"stale NO_FIX entries: {set(NO_FIX) - used}"


def test_the_hint_check_reads_messages_as_written() -> None:
    call = ast.parse("raise DataError(f'x {a}; pass target= or task=\\'regression\\'', param='task')").body[0]
    assert isinstance(call, ast.Raise) and isinstance(call.exc, ast.Call)
    text = _message_text(call.exc)
    assert text == "x {}; pass target= or task='regression'"
    assert _KEYWORD.findall(text) == ["target", "task"]
    assert [m.group(0) for m in _VALUE.finditer(text)] == ["task='regression'"]
    assert [m.group(0) for m in _VALUE.finditer("canaries=0 to skip; budget in [0, p_max={}]")] == ["canaries=0"]


def _frame(n: int = 120) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"x": rng.normal(size=n), "job": rng.choice(["a", "b", "c"], n),
                         "sex": rng.choice(["F", "M"], n), "y": rng.integers(0, 2, n)})


def test_non_binary_target_hints_task_and_a_single_valued_one_the_target() -> None:
    with pytest.raises(DataError) as info:
        audit.load_dataset(_frame(), target="job", sensitive="sex")
    assert str(info.value).endswith("Map it to two classes first or pass task='regression'.")
    assert info.value.param == "task" and info.value.fix == {"task": "regression"}
    frame = _frame()
    frame["y"] = 1
    with pytest.raises(DataError, match=r"Map it to two classes first\.$") as info:
        audit.load_dataset(frame, target="y", sensitive="sex")
    assert info.value.param == "target" and info.value.fix is None


def test_unknown_dataset_hints_source() -> None:
    with pytest.raises(DataError, match="unknown dataset 'adlut'") as info:
        audit.load_dataset("adlut")
    assert info.value.param == "source"


def test_too_few_canaries_hints_canaries_zero_and_the_cli_spells_the_flag() -> None:
    from fairpriv_cli.main import cli_message, main

    from audit.privacy._canaries import canary_plan

    with pytest.raises(ConfigError, match=r"canaries=0 to skip it$") as info:
        canary_plan(np.zeros(1), audit.PrivacyAuditConfig(), seed=0)
    assert info.value.param == "canaries" and info.value.fix == {"canaries": 0}
    assert cli_message(info.value, main.commands["run"]).endswith("--canaries 0 to skip it")


def test_batch_engine_mode_errors_hint_per_sample() -> None:
    from audit.training._models import MLP

    with pytest.raises(ConfigError, match="per_sample='vmap' for other modules") as info:
        audit.BatchEngine(per_sample="ghost", model_factory=lambda d, h: MLP(d, hidden=h))
    assert info.value.param == "per_sample" and info.value.fix == {"per_sample": "vmap"}
    with pytest.raises(ConfigError) as info:
        audit.BatchEngine(per_sample="fast")  # type: ignore[arg-type]
    assert info.value.param == "per_sample"


def test_onnx_input_errors_hint_input_columns() -> None:
    pytest.importorskip("onnxruntime")
    frame = _frame()
    with pytest.raises(DataError, match=r"choose the columns with input_columns=") as info:
        audit.audit_onnx_model(b"not read", frame, target="y", sensitive="sex")
    assert info.value.param == "input_columns"
    frame.loc[4, "x"] = 1e39  # would be inf as the float32 the model is fed
    with pytest.raises(DataError, match=r"^input column 'x' has 1 value\(s\) beyond ±3\.4e\+38 "
                       r"\(first at data rows \[5\]: 1e\+39\)") as info:
        audit.audit_onnx_model(b"not read", frame, target="y", sensitive="sex", input_columns=["x"])
    assert info.value.param == "input_columns"
    with pytest.raises(ConfigError, match="sets \\['y_true'\\] itself") as info:
        audit.audit_onnx_model(b"not read", frame, target="y", sensitive="sex", y_true="y")
    assert info.value.param == "y_true"
