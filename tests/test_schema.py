"""The JSON Schema of results.json, ``audit.validate_results`` and ``fairpriv validate``.

Every results file the rest of the suite writes is validated by the session fixture
``results_files_are_validated`` (tests/conftest.py); here: the schema against the
frame constants of ``audit/result/_schema.py``, rejected files and the command.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fairpriv_cli.main import main

from audit import (
    ACCOUNTANTS,
    CANARY_AUDITS,
    METRICS,
    MIA_METRICS,
    SCHEMA_VERSION,
    AuditResult,
    DataFileError,
    audit_predictions,
    results_schema,
    validate_results,
)
from audit.defaults import CANARY_KIND_CHOICES, MIA_CHOICES
from audit.result import _schema

GOLDEN = Path(__file__).with_name("golden") / "small_audit.json"
SCHEMA_FILE = Path(__file__).resolve().parents[1] / "audit" / "result" / "results.schema.json"
HOW_TO_UPDATE = (
    "Update audit/result/results.schema.json: add the field to the $defs entry named above "
    "(\"properties\", and \"required\" if every writer always writes it), bump SCHEMA_VERSION in "
    "audit/result/_schema.py (minor for an added field) and the schema's x-fairpriv-schema-version."
)


@pytest.fixture(scope="module")
def golden() -> dict[str, Any]:
    """A results file of every arm kind, MIA attack and record frame (the golden audit)."""
    return json.loads(GOLDEN.read_text(encoding="utf-8"))


def _rejection(data: dict[str, Any]) -> str:
    with pytest.raises(DataFileError) as info:
        validate_results(data)
    return str(info.value)


# ------------------------------------------------------------------ schema <-> _schema.py

#: Frame -> (the schema's $defs entry holding one row, the frame's columns, the columns
#: that results.json holds as keys of the nesting rather than as fields of the entry).
#: Adding a column to a frame (say ``ci_method`` to by_group, overall and gaps) makes
#: the rows below fail until the $defs entry lists it.
FRAME_ENTRIES: dict[str, tuple[str, tuple[str, ...], frozenset[str]]] = {
    # metrics.{aggregate | seeds[i]}.by_group.<group>.<metric> = {...}
    "by_group": ("stat", ("arm", "kind", *_schema.BY_GROUP_COLUMNS),
                 frozenset({"arm", "kind", "seed", "group", "metric"})),
    # metrics.{aggregate | seeds[i]}.overall.<metric> = {...}
    "overall": ("stat", ("arm", "kind", *_schema.OVERALL_COLUMNS),
                frozenset({"arm", "kind", "seed", "metric"})),
    # metrics.{aggregate | seeds[i]}.gaps.<metric>.<gap kind> = {...}
    "gaps": ("gap_stat", ("arm", "kind", *_schema.GAPS_COLUMNS),
             frozenset({"arm", "kind", "seed", "metric", "gap"})),
    # privacy = {...}, privacy.per_seed[i] = {"seed", ...}
    "privacy": ("privacy_fields", ("arm", "kind", "seed", *_schema.PRIVACY_FIELDS),
                frozenset({"arm", "kind", "seed"})),
    # privacy.mia.<attack>.{aggregate | seeds[i]}.{overall | by_group.<group>}.<metric>
    "mia": ("mia_stat", _schema.MIA_COLUMNS,
            frozenset({"arm", "kind", "seed", "attack", "group", "metric"})),
    # privacy.empirical.per_seed[i] (seed is a field here)
    "empirical": ("empirical_record", _schema.EMPIRICAL_COLUMNS, frozenset({"arm", "kind"})),
    # arms[i].<frame>[j]: the frame's rows of that arm
    "mechanism": ("mechanism_record", _schema.MECHANISM_COLUMNS, frozenset({"arm"})),
    "dp_cost": ("dp_cost_record", _schema.DP_COST_COLUMNS, frozenset({"arm"})),
    "gap_changes": ("gap_change_record", _schema.GAP_CHANGE_COLUMNS, frozenset({"arm"})),
    "roc": ("roc_record", _schema.ROC_COLUMNS, frozenset({"arm"})),
}


@pytest.mark.parametrize("frame", sorted(FRAME_ENTRIES))
def test_schema_fields_match_the_frame_columns(frame: str) -> None:
    entry, columns, nesting = FRAME_ENTRIES[frame]
    in_schema = set(results_schema()["$defs"][entry]["properties"])
    in_frame = set(columns) - nesting
    assert in_schema == in_frame, (
        f"the {frame} frame's columns (audit/result/_schema.py) and the schema's $defs/{entry} differ: "
        f"columns missing from the schema: {sorted(in_frame - in_schema)}; in the schema but no longer "
        f"columns: {sorted(in_schema - in_frame)}. {HOW_TO_UPDATE}")


def test_the_arm_entry_matches_the_arms_frame() -> None:
    arm = results_schema()["$defs"]["arm"]
    # arms frame: arm (written as "name"), kind, params; then the blocks and record frames.
    assert {"name", *_schema.ARMS_COLUMNS[1:]} <= set(arm["required"])
    assert {"mechanism", "dp_cost", "gap_changes", "roc"} <= set(arm["properties"])


def _enum_at(*keys: str) -> list[Any]:
    node: Any = results_schema()["$defs"]
    for key in keys:
        node = node[key]
    return list(node["enum"])


@pytest.mark.parametrize(("where", "expected"), [
    (("metric_stats", "propertyNames"), METRICS),
    (("metrics_block", "properties", "gaps", "propertyNames"), (*METRICS, *_schema.GAP_ONLY_METRICS)),
    (("mia_metric_stats", "propertyNames"), MIA_METRICS),
    (("privacy", "properties", "mia", "propertyNames"), tuple(a for a in MIA_CHOICES if a != "none")),
    (("roc_record", "properties", "attack"), tuple(a for a in MIA_CHOICES if a != "none")),
    (("empirical", "properties", "by_audit", "propertyNames"), tuple(CANARY_AUDITS)),
    (("empirical_record", "properties", "audit"), _schema.EMPIRICAL_AUDITS),
    (("privacy_fields", "properties", "accountant"), (*ACCOUNTANTS, None)),
    (("dp_cost_record", "properties", "metric"), METRICS),
    (("gap_change_record", "properties", "metric"), (*METRICS, *_schema.GAP_ONLY_METRICS)),
], ids=lambda v: "/".join(v) if isinstance(v, tuple) and all(isinstance(x, str) for x in v) else None)
def test_closed_name_sets_match_the_engine(where: tuple[str, ...], expected: tuple[Any, ...]) -> None:
    assert _enum_at(*where) == list(expected), (
        f"$defs/{'/'.join(where)} in audit/result/results.schema.json lists other names than the "
        f"engine ({list(expected)}); update the enum and bump SCHEMA_VERSION (minor for an added name).")


def test_canary_kinds_cover_the_black_box_choices() -> None:
    kinds = _enum_at("empirical_record", "properties", "canary_kind")
    # The white-box audits name their canaries "crafted" (rows) and "gradient".
    assert kinds == [*CANARY_KIND_CHOICES, "crafted", "gradient"]


def test_schema_is_valid_draft_2020_12_and_carries_the_version() -> None:
    from jsonschema import Draft202012Validator

    schema = results_schema()
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["x-fairpriv-schema-version"] == SCHEMA_VERSION
    assert schema == json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))  # the file, not a copy


def test_every_required_key_is_a_described_property() -> None:
    """A typo in a "required" list would make every file invalid, or check nothing."""
    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            # An entry built on a $ref inherits the referenced properties.
            if "required" in node and "$ref" not in node:
                missing = set(node["required"]) - set(node.get("properties", {}))
                assert not missing, f"{where}: required but not described: {sorted(missing)}"
            for key, value in node.items():
                walk(value, f"{where}/{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{where}[{i}]")

    walk(results_schema(), "#")


# ------------------------------------------------------------------ files that conform


def test_the_golden_file_and_an_external_audit_conform(golden: dict[str, Any], tmp_path: Path) -> None:
    validate_results(golden)
    validate_results(GOLDEN)
    import pandas as pd

    frame = pd.DataFrame({"y_true": [0, 1] * 60, "y_pred": [0, 1, 1, 1] * 30,
                          "y_score": [0.2, 0.9, 0.6, 0.7] * 30, "member": [0, 0, 1, 1] * 30,
                          "g": ["a"] * 60 + ["b"] * 60})
    external = audit_predictions(frame, sensitive="g", y_score="y_score", member="member",
                                 n_bootstrap=10, min_group_rows=5)
    external.to_json(tmp_path / "results.json")
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["arms"][0]["kind"] == "external" and data["arms"][0]["privacy"]["mia"]
    validate_results(tmp_path)  # an output folder: its results.json


def test_a_1_0_file_without_the_later_keys_is_still_read(golden: dict[str, Any]) -> None:
    old = copy.deepcopy(golden)
    old["schema_version"] = "1.0"
    for key in ("meta", "mechanism_reference", "dp_violation"):
        del old[key]
    for arm in old["arms"]:
        for key in ("solver", "mechanism", "dp_cost", "gap_changes", "roc"):
            del arm[key]
        del arm["privacy"]["mia"], arm["privacy"]["dp_violation"]
        empirical = arm["privacy"]["empirical"]
        del empirical["by_audit"]
        empirical["per_seed"] = [r for r in empirical["per_seed"] if r["audit"] == "black_box"]
        for run in empirical["per_seed"]:
            for key in ("audit", "family_confidence", "mu_lower_bound", "epsilon_lower_bound_gdp"):
                del run[key]
    validate_results(old)
    result = AuditResult.from_json(json.dumps(old))
    assert result.schema_version == "1.0"
    assert set(result.empirical["audit"]) == {"black_box"}
    # Written again, it is a file of this version.
    assert json.loads(result.to_json())["schema_version"] == SCHEMA_VERSION


def test_a_newer_minor_version_may_add_fields_and_names(golden: dict[str, Any]) -> None:
    newer = copy.deepcopy(golden)
    major, minor = SCHEMA_VERSION.split(".")
    newer["schema_version"] = f"{major}.{int(minor) + 1}"
    overall = newer["arms"][0]["metrics"]["aggregate"]["overall"]
    overall["error_rate"]["ci_method"] = "percentile"
    overall["balanced_accuracy"] = dict(overall["error_rate"])
    newer["provenance"] = {"pipeline": "nightly"}
    validate_results(newer)
    overall["fpr"]["value"] = "high"  # what it does know is still checked
    assert "overall.fpr.value: 'high' is not of type" in _rejection(newer)


# ------------------------------------------------------------------ rejected files


def test_a_wrong_type_is_named_with_its_field(golden: dict[str, Any]) -> None:
    bad = copy.deepcopy(golden)
    bad["arms"][1]["metrics"]["aggregate"]["by_group"]["minority"]["fnr"]["ci_low"] = "abc"
    bad["arms"][2]["privacy"]["per_seed"][0]["steps"] = 1.5
    message = _rejection(bad)
    assert message == ("not a valid results file: arms[1].metrics.aggregate.by_group.minority.fnr.ci_low: "
                       "'abc' is not of type 'number', 'null' (and 1 other problem)")


def test_a_missing_required_key_is_named(golden: dict[str, Any]) -> None:
    bad = copy.deepcopy(golden)
    del bad["arms"][3]["metrics"]["seeds"][1]["gaps"]["fpr"]["ratio"]["max_group"]
    assert _rejection(bad) == ("not a valid results file: arms[3].metrics.seeds[1].gaps.fpr.ratio.max_group: "
                               "required field is missing")
    del bad["dataset"]
    assert "dataset: required field is missing (and 1 other problem)" in _rejection(bad)


def test_an_unknown_metric_or_field_is_named(golden: dict[str, Any]) -> None:
    bad = copy.deepcopy(golden)
    overall = bad["arms"][0]["metrics"]["aggregate"]["overall"]
    overall["accuracy"] = overall.pop("error_rate")
    assert _rejection(bad).startswith(
        "not a valid results file: arms[0].metrics.aggregate.overall.accuracy: unknown metric 'accuracy'; "
        "known: error_rate, fpr, fnr")
    bad = copy.deepcopy(golden)
    mia = bad["arms"][0]["privacy"]["mia"]["loss"]["aggregate"]["overall"]
    mia["tpr_at_fpr_0.1pct"]["p_value"] = 0.5
    assert _rejection(bad) == ("not a valid results file: arms[0].privacy.mia.loss.aggregate.overall"
                               "['tpr_at_fpr_0.1pct'].p_value: unknown field (schema "
                               f"{SCHEMA_VERSION} has no such key)")
    bad = copy.deepcopy(golden)
    bad["arms"][0]["roc"][0]["attack"] = "shadow"
    assert "arms[0].roc[0].attack: 'shadow' is not one of ['loss', 'lira', 'rmia']" in _rejection(bad)


@pytest.mark.parametrize(("version", "message"), [
    ("2.0", "results schema_version '2.0' is not supported (this fairpriv reads 1.x"),
    ("1", "schema_version: '1' is not a version (MAJOR.MINOR"),
    (1.1, "schema_version: 1.1 is not a version (MAJOR.MINOR"),
    (None, "schema_version: None is not a version"),
])
def test_a_bad_schema_version_is_refused(golden: dict[str, Any], version: Any, message: str) -> None:
    bad = copy.deepcopy(golden)
    bad["schema_version"] = version
    assert message in _rejection(bad)
    del bad["schema_version"]
    assert _rejection(bad) == "not a fairpriv results file: schema_version: required field is missing"


def test_files_that_are_not_results(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match="results file not found"):
        validate_results(tmp_path / "none.json")
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(DataFileError, match="the top level is a JSON list, not an object"):
        validate_results(tmp_path / "list.json")
    (tmp_path / "latin1.json").write_bytes(b'{"a": "\xe9"}')
    with pytest.raises(DataFileError, match="is not UTF-8 text"):
        validate_results(tmp_path / "latin1.json")


def test_from_json_names_the_field_of_a_corrupted_file(golden: dict[str, Any]) -> None:
    bad = copy.deepcopy(golden)
    del bad["arms"][0]["privacy"]["per_seed"][0]["epsilon"]
    # Before the schema this was a KeyError turned into "missing or has a malformed field: 'epsilon'".
    with pytest.raises(DataFileError, match=r"arms\[0\]\.privacy\.per_seed\[0\]\.epsilon: required field"):
        AuditResult.from_json(json.dumps(bad))


def test_the_suite_validates_every_results_file_it_writes(golden: dict[str, Any]) -> None:
    """The conftest hook is in place: a writer emitting an unknown metric fails its test."""
    result = AuditResult.from_dict(golden)
    result.overall.loc[0, "metric"] = "accuracy"
    with pytest.raises(AssertionError, match="its own schema rejects: .*unknown metric 'accuracy'"):
        result.to_json()


# ------------------------------------------------------------------ fairpriv validate


def _validate(*args: str) -> Any:
    return CliRunner().invoke(main, ["validate", *args])


def test_cli_accepts_good_files_and_folders(tmp_path: Path) -> None:
    (tmp_path / "results.json").write_text(GOLDEN.read_text())
    res = _validate(str(GOLDEN), str(tmp_path))
    assert res.exit_code == 0, res.output
    assert res.output.splitlines() == [f"{GOLDEN}: valid (schema {SCHEMA_VERSION})",
                                       f"{tmp_path}: valid (schema {SCHEMA_VERSION})"]


def test_cli_names_the_field_of_a_bad_file_and_checks_the_rest(golden: dict[str, Any], tmp_path: Path) -> None:
    bad = copy.deepcopy(golden)
    bad["arms"][0]["metrics"]["aggregate"]["overall"]["fpr"]["n"] = "300"
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    res = _validate(str(tmp_path / "bad.json"), str(GOLDEN))
    assert res.exit_code == 1
    assert (f"Error: {tmp_path / 'bad.json'}: not a valid results file: "
            "arms[0].metrics.aggregate.overall.fpr.n: '300' is not of type 'integer'") in res.output
    assert f"{GOLDEN}: valid" in res.output  # the next file was still checked
    assert "Traceback" not in res.output


def test_cli_on_a_file_that_is_not_json_or_not_there(tmp_path: Path) -> None:
    (tmp_path / "notes.json").write_text("{not json")
    res = _validate(str(tmp_path / "notes.json"), str(tmp_path / "missing.json"))
    assert res.exit_code == 1
    lines = res.output.splitlines()
    assert lines[0].startswith(f"Error: {tmp_path / 'notes.json'}: not a valid results JSON: Expecting")
    assert lines[1] == f"Error: {tmp_path / 'missing.json'}: results file not found: '{tmp_path / 'missing.json'}'"
    assert "Traceback" not in res.output
    assert isinstance(res.exception, SystemExit)  # a clean exit, not an error escaping


def test_cli_says_when_a_newer_file_was_checked_in_part(golden: dict[str, Any], tmp_path: Path) -> None:
    newer = copy.deepcopy(golden)
    major, minor = SCHEMA_VERSION.split(".")
    newer["schema_version"] = f"{major}.{int(minor) + 5}"
    (tmp_path / "results.json").write_text(json.dumps(newer))
    res = _validate(str(tmp_path / "results.json"))
    assert res.exit_code == 0
    assert f"valid (schema {newer['schema_version']}; newer than this fairpriv's {SCHEMA_VERSION}" in res.output
