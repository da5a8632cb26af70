"""Auditing predictions of a model trained elsewhere."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from fairpriv_cli.main import main
from pdf_checks import assert_pdf_sound

from audit import AuditResult, DataError, audit_predictions


def predictions(n: int = 2000, seed: int = 0, leak: float = 0.0) -> pd.DataFrame:
    """Group B gets more false positives; members (half the rows) get scores pushed toward
    their true label by ``leak``."""
    rng = np.random.default_rng(seed)
    g = np.where(rng.random(n) < 0.3, "B", "A")
    y = rng.integers(0, 2, n)
    member = (rng.random(n) < 0.5).astype(int)
    logit = 1.5 * (y - 0.5) * 2 + rng.normal(0, 1, n) + np.where(g == "B", 1.0, 0.0)
    logit += leak * member * np.where(y == 1, 1, -1)
    score = 1 / (1 + np.exp(-logit))
    return pd.DataFrame({"y_true": np.where(y == 1, "yes", "no"), "y_pred": (score >= 0.5).astype(int),
                         "y_score": score, "grp": g, "member": member})


def test_fairness_metrics_match_the_rows() -> None:
    df = predictions()
    res = audit_predictions(df, sensitive="grp", y_score="y_score", positive_label="yes", n_bootstrap=100)
    by = res.aggregate("by_group")
    yt = (df["y_true"] == "yes").astype(int)
    for group in ("A", "B"):
        rows = df["grp"] == group
        err = by[(by["group"] == group) & (by["metric"] == "error_rate")]["value"].iloc[0]
        assert err == pytest.approx(float(np.mean((df.loc[rows, "y_score"] >= 0.5) != yt[rows])))
    fpr = res.aggregate("gaps")
    fpr = fpr[(fpr["metric"] == "fpr") & (fpr["gap"] == "difference")].iloc[0]
    assert fpr["max_group"] == "B" and bool(fpr["exceeds_uncertainty"])
    assert res.aggregate("privacy")["epsilon"].isna().all()
    assert res.mia.empty  # no membership column given


def test_membership_inference_when_scores_and_members_known() -> None:
    leaky = audit_predictions(predictions(leak=2.0), sensitive="grp", y_score="y_score",
                              member="member", positive_label="yes", n_bootstrap=50)
    clean = audit_predictions(predictions(leak=0.0), sensitive="grp", y_score="y_score",
                              member="member", positive_label="yes", n_bootstrap=50)

    def auc(res: AuditResult) -> float:
        m = res.mia
        return float(m[m["seed"].isna() & (m["group"] == "overall") & (m["metric"] == "auc")]["value"].iloc[0])

    assert auc(leaky) > 0.7
    assert abs(auc(clean) - 0.5) < 0.05  # n=2000 split in half: AUC sd ~0.013
    # fairness is measured on the rows the model did not train on
    assert leaky.dataset["evaluated_rows"] == int((predictions()["member"] == 0).sum())


def test_without_scores_auc_and_log_loss_are_blank() -> None:
    res = audit_predictions(predictions(), sensitive="grp", positive_label="yes", n_bootstrap=20)
    by = res.aggregate("by_group")
    assert by[by["metric"].isin(["roc_auc", "log_loss"])]["value"].isna().all()
    assert by[by["metric"] == "error_rate"]["value"].notna().all()


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d.assign(y_score=d["y_score"] * 2), r"score column 'y_score' needs probabilities in \[0, 1\]"),
    (lambda d: d.assign(y_pred="maybe"), r"column 'y_pred' must hold \['no', 'yes'\] or 0/1"),
    (lambda d: d.drop(columns="member"), "member column 'member' not found"),
    (lambda d: d.assign(member=1), "every row has member=1"),
])
def test_bad_prediction_files(change, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DataError, match=message):
        audit_predictions(change(predictions(200)), sensitive="grp", y_score="y_score", member="member",
                          positive_label="yes", n_bootstrap=0)


def test_cli_audit_model_writes_results_and_reports(tmp_path: Path) -> None:
    path = tmp_path / "preds.csv"
    predictions(600).to_csv(path, index=False)
    res = CliRunner().invoke(main, ["audit-model", "--predictions", str(path), "--sensitive", "grp",
                                    "--y-score", "y_score", "--member", "member", "--positive-label",
                                    "yes", "--bootstrap", "50", "--out", str(tmp_path / "o")],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output
    data = json.loads((tmp_path / "o" / "results.json").read_text())
    assert data["arms"][0]["kind"] == "external" and data["arms"][0]["privacy"]["epsilon"] is None
    assert (tmp_path / "o" / "report.pdf").read_bytes()[:5] == b"%PDF-"
    assert_pdf_sound(tmp_path / "o" / "report.pdf")
    assert AuditResult.from_json(tmp_path / "o" / "results.json").to_dict() == data


def _onnx_logistic(path: Path, w: list[float], b: float, prob_output: bool = True) -> None:
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    nodes = [helper.make_node("MatMul", ["X", "W"], ["z0"]), helper.make_node("Add", ["z0", "B"], ["z"])]
    out = "z"
    if prob_output:
        nodes.append(helper.make_node("Sigmoid", ["z"], ["prob"]))
        out = "prob"
    graph = helper.make_graph(
        nodes, "logistic",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, len(w)])],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, [None, 1])],
        initializer=[helper.make_tensor("W", TensorProto.FLOAT, [len(w), 1], w),
                     helper.make_tensor("B", TensorProto.FLOAT, [1], [b])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    onnx.save(model, str(path))


@pytest.mark.parametrize("prob_output", [True, False])
def test_onnx_model_is_run_and_audited(tmp_path: Path, prob_output: bool) -> None:
    pytest.importorskip("onnxruntime")
    from audit import audit_onnx_model

    rng = np.random.default_rng(0)
    n = 800
    X = rng.normal(size=(n, 2))
    y = (X[:, 0] - X[:, 1] + rng.normal(0, 0.5, n) > 0).astype(int)
    data = pd.DataFrame({"a": X[:, 0], "b": X[:, 1], "grp": rng.choice(["p", "q"], n), "label": y,
                         "member": rng.integers(0, 2, n)})
    _onnx_logistic(tmp_path / "m.onnx", [2.0, -2.0], 0.0, prob_output)
    res = audit_onnx_model(tmp_path / "m.onnx", data, target="label", sensitive="grp", member="member",
                           n_bootstrap=50)
    prob = 1 / (1 + np.exp(-(2 * X[:, 0] - 2 * X[:, 1])))
    rows = (data["member"] == 0).to_numpy()
    expected = float(np.mean((prob[rows] >= 0.5) != y[rows]))
    err = res.aggregate("overall")
    assert err[err["metric"] == "error_rate"]["value"].iloc[0] == pytest.approx(expected)
    assert not res.mia.empty


def test_onnx_bad_inputs(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    from audit import audit_onnx_model

    data = pd.DataFrame({"a": [0.1, 0.2] * 50, "c": ["x", "y"] * 50, "grp": ["p", "q"] * 50,
                         "label": [0, 1] * 50})
    _onnx_logistic(tmp_path / "m.onnx", [1.0], 0.0)
    with pytest.raises(DataError, match=r"must be numeric, but \['c'\]"):
        audit_onnx_model(tmp_path / "m.onnx", data, target="label", sensitive="grp")
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(DataError, match="not a loadable ONNX model"):
        audit_onnx_model(tmp_path / "junk.onnx", data.drop(columns="c"), target="label", sensitive="grp")
    with pytest.raises(DataError, match="expects 1 input columns but 2"):
        audit_onnx_model(tmp_path / "m.onnx", data.assign(c=1.0), target="label", sensitive="grp")


def test_groups_without_evaluable_rows_are_an_error() -> None:
    df = predictions(400)
    df.loc[df["grp"] == "B", "member"] = 1  # every B row was in training
    with pytest.raises(DataError, match=r"group\(s\) with fewer than 20 non-member rows to evaluate: 'B': 0"):
        audit_predictions(df, sensitive="grp", y_score="y_score", member="member", positive_label="yes",
                          n_bootstrap=0)
