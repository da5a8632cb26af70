"""Auditing a model trained elsewhere, from its predictions (no training).

The input is one row per person: the true label, the model's predicted label,
optionally its score (probability of the positive class), the sensitive column(s),
and optionally ``member`` (1 = the row was in the model's training data). Fairness
metrics with CIs come out exactly as for a trained arm; membership inference runs
when both scores and membership are known. A model trained elsewhere has no known
training mechanism, so it never carries an epsilon ("no guarantee").
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._exceptions import ConfigError, DataError
from .._validation import options_from_keywords
from ..data._datasets import Dataset, load_dataset
from ..defaults import (
    DEFAULT_CI_LEVEL,
    DEFAULT_MIA_BOOTSTRAP,
    DEFAULT_MIN_GROUP_ROWS,
    DEFAULT_N_BOOTSTRAP,
    DEFAULT_NA_VALUES,
    DEFAULT_SIMULTANEOUS_CI,
)
from ..dp._accounting import NO_GUARANTEE
from ..fairness._metrics import evaluate_predictions
from ..privacy._mia import attack_metrics
from ..result._container import AuditResult
from ..result._schema import normalise_frames, normalise_mia
from ._assemble import library_versions

__all__ = ["PredictionAuditOptions", "audit_onnx_model", "audit_predictions"]

ARM = "model"
KIND = "external"


@dataclass(frozen=True, kw_only=True)
class PredictionAuditOptions:
    """Options of :func:`audit_predictions`, validated in one place.

    Attributes
    ----------
    y_true, y_pred, y_score
        Columns of the true label, the predicted label (same two values as the true
        label, or 0/1) and, optionally, the score of the positive class in [0, 1].
    member
        Optional column, 1 when the row was in the model's training data, 0 otherwise.
    positive_label
        Which label value is positive (default as in :func:`load_dataset`).
    n_bootstrap, mia_bootstrap, ci_level
        Bootstrap resamples of the fairness metrics that are not rates (AUC, log-loss;
        rates get score intervals) and of the attack metrics, and the level of the
        fairness intervals.
    simultaneous_ci
        Bonferroni-adjust each metric's intervals to hold together across the groups
        (see :class:`AuditConfig`).
    na_values, name, min_group_rows
        Missing-value markers, the name shown in reports (e.g. the uploaded file's name;
        default "predictions"), the smallest group evaluated.
    """

    y_true: str = "y_true"
    y_pred: str = "y_pred"
    y_score: str | None = None
    member: str | None = None
    positive_label: str | None = None
    n_bootstrap: int = DEFAULT_N_BOOTSTRAP
    mia_bootstrap: int = DEFAULT_MIA_BOOTSTRAP
    ci_level: float = DEFAULT_CI_LEVEL
    simultaneous_ci: bool = DEFAULT_SIMULTANEOUS_CI
    na_values: Sequence[str] = DEFAULT_NA_VALUES
    name: str | None = None
    min_group_rows: int = DEFAULT_MIN_GROUP_ROWS


def audit_predictions(source: str | Path | pd.DataFrame, *, sensitive: str | Sequence[str],
                      **options: Any) -> AuditResult:
    """Fairness (and, with scores and membership, privacy) audit of given predictions.

    Parameters
    ----------
    source
        A CSV/Parquet path or a DataFrame with one row per person.
    sensitive
        Sensitive column(s); several give intersectional groups.
    **options
        The fields of :class:`PredictionAuditOptions`: ``y_true``, ``y_pred``,
        ``y_score``, ``member``, ``positive_label``, ``n_bootstrap``, ``mia_bootstrap``,
        ``ci_level``, ``simultaneous_ci``, ``na_values``, ``name``, ``min_group_rows``.

    Returns
    -------
    AuditResult
        One arm, ``"model"`` (kind ``"external"``), evaluated on every row (or, with
        ``member``, on the non-member rows, which the model has not seen).

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"y_true": [0, 1] * 50, "y_pred": [0, 1, 1, 1] * 25,
    ...                    "sex": ["F"] * 50 + ["M"] * 50})
    >>> res = audit_predictions(df, sensitive="sex", n_bootstrap=0)
    >>> res.error_table().round(2).to_dict("records")
    [{'F': 0.24, 'M': 0.26}]
    """
    started = time.perf_counter()
    opts = options_from_keywords(PredictionAuditOptions, "audit_predictions", options)
    data = _read_predictions(source, sensitive, opts)
    bg, ov, gp, pv = _fairness(data, opts)
    mia = _membership(data, opts)
    info = data.dataset.describe()
    info["evaluated_rows"] = int(data.evaluate.sum())
    info["inputs"] = {"y_true": opts.y_true, "y_pred": opts.y_pred, "y_score": opts.y_score,
                      "member": opts.member}
    config: dict[str, Any] = {"seeds": [0], "n_bootstrap": opts.n_bootstrap, "ci_level": opts.ci_level,
                              "simultaneous_ci": opts.simultaneous_ci, "source": "predictions"}
    digest = hashlib.sha256(json.dumps({**config, **info["inputs"]}, sort_keys=True).encode())
    meta = {"created": pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds"),
            "elapsed_s": round(time.perf_counter() - started, 3), "trainer": "none",
            "config_hash": digest.hexdigest()[:12], "versions": library_versions()}
    return AuditResult(
        config=config, dataset=info,
        arms=pd.DataFrame([{"arm": ARM, "kind": KIND, "params": {}}]),
        by_group=bg, overall=ov, gaps=gp, privacy=pv, meta=meta, mia=mia,
    )


@dataclass(frozen=True, eq=False)
class _Predictions:
    """The checked inputs: labels and groups, hard predictions, scores, membership."""

    dataset: Dataset
    pred: np.ndarray
    score: np.ndarray | None
    is_member: np.ndarray | None
    evaluate: np.ndarray  # rows the fairness metrics use: the non-members, or every row


def _read_predictions(source: str | Path | pd.DataFrame, sensitive: str | Sequence[str],
                      opts: PredictionAuditOptions) -> _Predictions:
    ds = load_dataset(source, target=opts.y_true, sensitive=sensitive, positive_label=opts.positive_label,
                      na_values=opts.na_values, missing_target="error", name=opts.name or "predictions")
    frame = ds.features
    for col, role in ((opts.y_pred, "y_pred"), (opts.y_score, "y_score"), (opts.member, "member")):
        if col is not None and col not in frame.columns:
            raise DataError(f"{role} column '{col}' not found; columns: {', '.join(map(str, frame.columns))}",
                            param=role)
    pred = _binary_column(frame[opts.y_pred], opts.y_pred, ds.label_names)
    score = None
    if opts.y_score is not None:
        score = pd.to_numeric(frame[opts.y_score], errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(score) | (score < 0) | (score > 1)
        if bad.any():
            rows = (np.flatnonzero(bad)[:5] + 1).tolist()
            raise DataError(f"score column '{opts.y_score}' needs probabilities in [0, 1]; "
                            f"{int(bad.sum())} value(s) are not (first at data rows {rows}).")
    is_member = None
    if opts.member is not None:
        is_member = _binary_column(frame[opts.member], opts.member, None).astype(bool)
    evaluate = ~is_member if is_member is not None else np.ones(ds.n_rows, dtype=bool)
    if not evaluate.any():
        raise DataError(f"every row has {opts.member}=1: fairness is measured on rows the model did "
                        "not train on, and there are none")
    _check_group_sizes(ds, evaluate, opts)
    return _Predictions(ds, pred, score, is_member, evaluate)


def _check_group_sizes(ds: Dataset, evaluate: np.ndarray, opts: PredictionAuditOptions) -> None:
    counts = {g: int(np.sum(ds.groups[evaluate] == g)) for g in ds.group_labels}
    small = {g: n for g, n in counts.items() if n < opts.min_group_rows}
    if small:
        where = " non-member" if opts.member is not None else ""
        raise DataError(
            f"group(s) with fewer than {opts.min_group_rows}{where} rows to evaluate: "
            + ", ".join(f"'{g}': {n}" for g, n in small.items())
            + "; a gap cannot be measured without them. Add rows, choose coarser groups, or "
              "lower min_group_rows.")


def _fairness(data: _Predictions, opts: PredictionAuditOptions) -> tuple[pd.DataFrame, ...]:
    """Per-group metrics, overall, gaps and the (empty) privacy ledger, normalised."""
    ds, keep = data.dataset, data.evaluate
    # Without scores the hard predictions stand in for them: log-loss and AUC then say
    # nothing and are blanked below.
    used = data.score if data.score is not None else data.pred
    by_group, overall, gaps = evaluate_predictions(
        ds.y[keep], used[keep][None, :], ds.groups[keep], seeds=[0],
        n_bootstrap=opts.n_bootstrap, ci_level=opts.ci_level, simultaneous_ci=opts.simultaneous_ci)
    if data.score is None:
        for df in (by_group, overall):
            mask = df["metric"].isin(["log_loss", "roc_auc"])
            df.loc[mask, ["value", "std", "ci_low", "ci_high"]] = np.nan
        mask = gaps["metric"].isin(["log_loss", "roc_auc"])
        gaps.loc[mask, ["value", "std", "ci_low", "ci_high"]] = np.nan
        gaps["exceeds_uncertainty"] = gaps["exceeds_uncertainty"].astype(object)
        gaps.loc[mask, "exceeds_uncertainty"] = None
    bg0, ov0, gp0 = (df.assign(arm=ARM, kind=KIND) for df in (by_group, overall, gaps))
    privacy = pd.DataFrame([{"arm": ARM, "kind": KIND, "seed": s, "epsilon": None, "delta": None,
                             "guarantee": NO_GUARANTEE} for s in (0, None)])
    return normalise_frames(bg0, ov0, gp0, privacy, [ARM])


def _membership(data: _Predictions, opts: PredictionAuditOptions) -> pd.DataFrame:
    """Loss-threshold membership inference when scores and membership are both known."""
    score, is_member, ds = data.score, data.is_member, data.dataset
    if score is None or is_member is None or not is_member.any():
        return pd.DataFrame()
    p_true = np.clip(np.where(ds.y > 0.5, score, 1 - score), 1e-12, 1.0)
    loss_score = np.log(p_true)  # = -loss: higher means more member-like
    df = attack_metrics(loss_score[is_member], loss_score[~is_member], ds.groups[is_member],
                        ds.groups[~is_member], n_bootstrap=opts.mia_bootstrap, seed=0)
    df.loc[df["metric"] == "advantage", ["ci_low", "ci_high"]] = np.nan
    per_seed = df.assign(arm=ARM, kind=KIND, seed=0, attack="loss")
    agg = per_seed.assign(seed=None, std=np.nan)
    return normalise_mia(pd.concat([per_seed, agg], ignore_index=True), [ARM])


def _binary_column(col: pd.Series, name: str, labels: tuple[str, str] | None) -> np.ndarray:
    """0/1 from a 0/1, boolean, or (when the target's labels are known) label column."""
    values = col.map(lambda v: v.strip().rstrip(".") if isinstance(v, str) else v)
    if values.isna().any():
        raise DataError(f"column '{name}' has {int(values.isna().sum())} missing value(s); fill them")
    if labels is not None:
        as_text = values.map(str)
        if set(as_text) <= set(labels):
            return (as_text == labels[1]).to_numpy(dtype=float)
    uniques = set(pd.unique(values))
    if uniques <= {0, 1}:
        return values.astype(float).to_numpy()
    shown = sorted(str(v) for v in uniques)[:5]
    expected = f"{list(labels)} or 0/1" if labels else "0/1"
    raise DataError(f"column '{name}' must hold {expected}, found {shown}")


def audit_onnx_model(
    model: str | Path | bytes,
    data: str | Path | pd.DataFrame,
    *,
    target: str,
    sensitive: str | Sequence[str],
    input_columns: Sequence[str] | None = None,
    **options: Any,
) -> AuditResult:
    """Audit an ONNX binary classifier on a labelled dataset (run with onnxruntime).

    The model receives one float32 matrix: ``input_columns`` (default: every column but
    the target, sensitive and membership columns), in that order, as numbers. Its
    positive-class probability is the second column of a two-column output, or a
    one-column output in [0, 1] (a logit outside [0, 1] goes through a sigmoid). The
    file is only parsed as ONNX: nothing is unpickled or executed outside onnxruntime.
    ``options`` are those of :func:`audit_predictions` (``member``, ``positive_label``,
    ``n_bootstrap``, ``mia_bootstrap``, ``ci_level``, ``na_values``, ``name`` (shown in
    reports; default "onnx model"), ...) except the prediction columns, which the model
    provides.
    """
    taken = sorted({"y_true", "y_pred", "y_score"} & set(options))
    if taken:
        raise ConfigError(f"audit_onnx_model sets {taken} itself; pass target= for the label column",
                          param=taken[0])
    opts = options_from_keywords(PredictionAuditOptions, "audit_onnx_model", options)
    member, na_values = opts.member, opts.na_values
    try:
        import onnxruntime as ort
    except ImportError:  # pragma: no cover - optional dependency
        raise DataError("auditing ONNX models needs onnxruntime: pip install onnxruntime") from None
    from ..data._preprocess import check_numbers
    from ..data._readers import clean_frame, read_table

    frame = data.copy() if isinstance(data, pd.DataFrame) else read_table(Path(data), na_values=na_values)
    frame = clean_frame(frame, na_values=na_values)
    sens = [sensitive] if isinstance(sensitive, str) else list(sensitive)
    skip = {target, *sens, *([member] if member else [])}
    cols = list(input_columns) if input_columns is not None else [c for c in frame.columns if c not in skip]
    missing = [c for c in cols if c not in frame.columns]
    if missing:
        raise DataError(f"input column(s) {missing} not found; columns: {', '.join(map(str, frame.columns))}")
    non_numeric = [c for c in cols if not pd.api.types.is_numeric_dtype(frame[c])]
    if non_numeric:
        raise DataError(
            f"ONNX model inputs must be numeric, but {non_numeric} are not; encode them as the model "
            "expects, or choose the columns with input_columns=...", param="input_columns")
    check_numbers(frame, cols, role="input", param="input_columns",
                  fix="Remove or cap those values, or drop those rows.")
    X = frame[cols].to_numpy(dtype=np.float32)
    if np.isnan(X).any():
        raise DataError("input columns contain missing values; the model needs complete rows")
    raw = model if isinstance(model, bytes) else Path(model).read_bytes()
    try:
        session = ort.InferenceSession(raw, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        raise DataError(f"not a loadable ONNX model: {exc}") from None
    inputs = session.get_inputs()
    if len(inputs) != 1:
        raise DataError(f"the model has {len(inputs)} inputs; fairpriv feeds one float matrix")
    width = inputs[0].shape[-1] if inputs[0].shape else None
    if isinstance(width, int) and width != X.shape[1]:
        raise DataError(f"the model expects {width} input columns but {X.shape[1]} were given ({cols})")
    try:
        outputs = session.run(None, {inputs[0].name: X})
    except Exception as exc:
        raise DataError(f"running the ONNX model failed: {exc}") from None
    prob = _probability(outputs)
    preds = frame[[target, *sens, *([member] if member else [])]].copy()
    preds["__score"] = prob
    preds["__pred"] = (prob >= 0.5).astype(int)
    return audit_predictions(preds, sensitive=sens, **{**options, "y_true": target, "y_pred": "__pred",
                                                       "y_score": "__score",
                                                       "name": opts.name or "onnx model"})


def _probability(outputs: Sequence[Any]) -> np.ndarray:
    for out in outputs:
        if isinstance(out, list) and out and isinstance(out[0], dict):
            # sklearn-onnx's default ZipMap output: one {class: probability} per row
            keys = sorted(out[0], key=str)
            if len(keys) == 2:
                return np.array([float(row[keys[1]]) for row in out])
        arr = np.asarray(out, dtype=float) if not isinstance(out, list) else None
        if arr is None or arr.ndim == 0:
            continue
        if arr.ndim == 2 and arr.shape[1] == 2:
            return arr[:, 1]
        if arr.ndim == 1 or (arr.ndim == 2 and arr.shape[1] == 1):
            values = arr.reshape(-1)
            if np.all((values >= 0) & (values <= 1)) and not np.all(np.isin(values, (0, 1))):
                return values
            if not np.all(np.isin(values, (0, 1))):
                return 1.0 / (1.0 + np.exp(-values))
    raise DataError("could not find a probability output: expected (n, 2) probabilities or one "
                    "score per row")
