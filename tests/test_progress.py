"""Progress: one event stream that counts every model and step, with a fraction that
means something, an estimate of the time left, and cancellation by raising."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner
from fairpriv_cli.main import main
from fit_helpers import RecordingExecutor

from audit import (
    AuditConfig,
    BaselineArm,
    DPSGDArm,
    Executor,
    FitJob,
    FittedModel,
    GroupDropoutArm,
    LocalExecutor,
    PrivacyAuditConfig,
    ProgressEvent,
    TrainingConfig,
    UniformDropoutArm,
    load_dataset,
    run_audit,
)
from audit.pipeline._events import STAGES
from audit.pipeline._plan import audit_job_count, plan_solver
from audit.pipeline._prepare import prepare
from audit.training._batched import BatchedTrainer
from audit.training._reference import ReferenceTrainer
from audit.training._trainer import REPORTS_PER_RUN, TrainingRows

# Small and fast, but every kind of work: the solver (closed form and candidates), all four
# arms, LiRA/RMIA shadows, black-box and white-box canary runs, every measurement step.
# RDP calibrates DP-SGD's noise faster than PRV; batches of 64 give small sampling rates.
TRAINING = TrainingConfig(hidden=(8,), epochs=2, batch_size=64)
ARMS = (BaselineArm(), UniformDropoutArm(p=0.3), GroupDropoutArm(), DPSGDArm(accountant="rdp"))


def _config(**kw: Any) -> AuditConfig:
    base: dict[str, Any] = dict(
        arms=ARMS, seeds=2, n_bootstrap=20, training=TRAINING,
        privacy_audit=PrivacyAuditConfig(mia="lira", shadows=2, mia_bootstrap=10, canaries=100,
                                         white_box_canaries=50, gradient_canaries=200,
                                         mechanism_rows=5, mechanism_masks=4))
    base.update(kw)
    return AuditConfig(**base)


_Recording = RecordingExecutor


@pytest.fixture(scope="module")
def data() -> Any:
    return load_dataset("synthetic", n_rows=1500)


@pytest.fixture(scope="module")
def plain(data: Any) -> Any:
    """The audit without a progress callback. It runs first, so that DP-SGD's noise
    calibrations (one accountant call each, a second or more, indivisible) are cached
    for the audit with progress: its events then show the counting and weighting of the
    training and measurement themselves."""
    return run_audit(data, _config())


@pytest.fixture(scope="module")
def audited(data: Any, plain: Any) -> tuple[list[ProgressEvent], _Recording, Any]:
    events: list[ProgressEvent] = []
    executor = _Recording()
    result = run_audit(data, _config(), executor=executor, progress=events.append)
    return events, executor, result


def _last_of(events: list[ProgressEvent], stage: str) -> ProgressEvent:
    return [e for e in events if e.stage == stage][-1]


def test_totals_are_known_and_nonzero_from_the_first_event(audited: Any) -> None:
    events, _, _ = audited
    first = events[0]
    assert first.stage == "solver" and first.label == STAGES["solver"].label
    assert first.total > 0 and first.stage_total > 0 and first.done == 0
    assert first.fraction == 0.0 and first.eta_s is None
    # The total never grows; it shrinks at most once (by the solver's 4 folds, when the
    # closed form's choice is one of the grid's candidates).
    totals = [e.total for e in events]
    assert totals == sorted(totals, reverse=True) and len(set(totals)) <= 2
    assert first.total - totals[-1] in (0, 4)


def test_fraction_never_goes_back_and_is_one_at_done(audited: Any) -> None:
    events, _, _ = audited
    fractions = np.array([e.fraction for e in events])
    assert np.all(np.diff(fractions) >= 0)
    assert np.all((fractions >= 0) & (fractions <= 1))
    assert events[-1].stage == "done" and events[-1].fraction == 1.0
    assert [e.stage for e in events].count("done") == 1
    assert fractions[:-1].max() <= 1.0
    # The stages come in order, each once.
    order = list(dict.fromkeys(e.stage for e in events))
    assert order == ["solver", "arms", "shadows", "canaries", "measure", "done"]


def test_models_reported_per_stage_are_the_models_trained(audited: Any, data: Any) -> None:
    events, executor, _ = audited
    config = _config()
    trained = pd.Series([job.purpose for job in executor.seen]).value_counts().to_dict()
    # Expected counts from the plans: the solver's search (its closed-form fits and its
    # candidates x folds), and audit_job_count for the audit proper.
    prepared = prepare(data, config, {})
    search = plan_solver(prepared, config).searches["group_dropout"]
    n_arms, n_seeds = len(ARMS), 2
    expected = {"solver": search.closed_form_fits + len(search.jobs), "arms": n_arms * n_seeds,
                "shadows": n_arms * 2}
    expected["canaries"] = audit_job_count(config, len(prepared.test)) - expected["arms"] - expected["shadows"]
    assert search.closed_form_fits == 13
    assert expected["canaries"] == n_arms * n_seeds * 2  # a black-box and a row-canary run per seed
    assert trained == {"solver": len(search.jobs), "arm": expected["arms"], "shadow": expected["shadows"],
                       "canary": expected["canaries"]}
    for stage, count in expected.items():
        last = _last_of(events, stage)
        assert last.stage_done == last.stage_total == count, stage
        assert last.unit == "models"
    done = events[-1]
    assert done.done == done.total == sum(expected.values()) == len(executor.seen) + 13
    # Every measurement step is counted too: 4 metrics, 1 gap changes, 8 membership (arm x
    # seed), 16 canary scorings (run x arm), 2 noise curves (the two dropout arms).
    measure = _last_of(events, "measure")
    assert measure.unit == "steps" and measure.stage_done == measure.stage_total == 4 + 1 + 8 + 16 + 2
    # A model's count rises by one at a time.
    assert all(b.done - a.done in (0, 1) for a, b in zip(events, events[1:], strict=False))


def test_no_burst_when_a_batch_finishes(audited: Any) -> None:
    events, _, _ = audited
    jumps = np.diff([e.fraction for e in events])
    # (The closed form's fits are counted as they end, with their work.)
    finished = np.array([b.done > a.done and b.detail != "logistic closed form"
                         for a, b in zip(events, events[1:], strict=False)])
    # The batched trainer reports every model's steps as they are taken: when a batch of
    # models finishes together (the counts jump by the batch), the fraction does not.
    assert finished.sum() > 0 and np.all(jumps[finished] == 0)
    # Bound on any jump: a training report credits at most 1/REPORTS_PER_RUN of one batch
    # (at least one report per epoch and per steps/20), and a measurement step is one of
    # 32. With exact cost estimates a jump is that piece's share of the whole audit, below
    # 1/20 here (no batch is the whole audit). Rescaling by measured times reweighs only the
    # work left, so a piece can weigh more than its prior share: allow a factor of 3, still
    # far from the old bursts (a whole stage of models at once). (A DP noise calibration not
    # yet cached is one accountant call, and moves the bar by its share of the time when it
    # ends; here they are cached, see the `plain` fixture.)
    assert REPORTS_PER_RUN == 20
    assert jumps.max() <= 3 / REPORTS_PER_RUN, (jumps.max(), events[int(jumps.argmax()) + 1])
    # Training advances between model completions, epoch by epoch.
    epochs = [e for e in events if e.detail and "epoch" in e.detail]
    assert len(epochs) >= 2 * len(events) // 3


def test_eta_is_given_after_the_first_stretch_and_is_finite(audited: Any) -> None:
    events, _, _ = audited
    later = [e for e in events if e.fraction >= 0.1 and e.stage != "done"]
    assert later and all(e.eta_s is not None and math.isfinite(e.eta_s) and e.eta_s >= 0 for e in later)
    assert events[-1].eta_s == 0.0
    # Once given, it is not withdrawn.
    given = [e.eta_s is not None for e in events]
    assert given == sorted(given)


def test_describe_names_the_stage_and_counts(audited: Any) -> None:
    events, _, _ = audited
    for e in events[:-1]:
        text = e.describe()
        assert text.startswith(f"{e.label}: {e.stage_done}/{e.stage_total} {e.unit}")
        assert f"{math.floor(e.fraction * 100)}%" in text
        assert ("left" in text) == (e.eta_s is not None)
    arms = [e for e in events if e.stage == "arms" and e.arm == "dp_sgd" and e.seed == 1]
    assert arms and "Training arms: " in arms[-1].describe() and "(dp_sgd seed 1" in arms[-1].describe()
    measuring = [e.describe() for e in events if e.stage == "measure"]
    assert any("membership inference" in t for t in measuring)
    assert any("white-box row-canary audit" in t for t in measuring)
    assert events[-1].describe().startswith(f"Done: {events[-1].done} models trained in ")


def test_describe_formats() -> None:
    event = ProgressEvent("arms", "dp_sgd", 1, 40, 120, 12.0, label="Training arms", stage_done=4,
                          stage_total=12, fraction=0.376, eta_s=70.2)
    assert event.describe() == "Training arms: 4/12 models (dp_sgd seed 1) · 37% · about 1 min 10 s left"
    assert event.headline() == "Training arms: 4/12 models (dp_sgd seed 1)"
    assert event.eta_text() == "about 1 min 10 s left"
    # The fields of old events still construct one (label from the stage).
    old = ProgressEvent("measure", None, None, 3, 3, 1.0)
    assert old.describe() == "Measuring: 0/0 steps · 0%"


def test_results_do_not_depend_on_a_progress_callback(audited: Any, plain: Any) -> None:
    _, _, with_progress = audited
    without = plain
    for name in ("by_group", "gaps", "empirical", "mia"):
        pd.testing.assert_frame_equal(getattr(with_progress, name), getattr(without, name), check_exact=True)
    assert with_progress.solutions == without.solutions


class _Cancelled(Exception):
    pass


@pytest.mark.parametrize(("show_progress", "after"), [(False, None), (True, None), (False, 7)])
def test_a_raising_callback_cancels_promptly_without_threads(data: Any, show_progress: bool, after: int | None,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    threads = set(threading.enumerate())
    seen: list[ProgressEvent] = []
    raised: list[float] = []

    def cancel(event: ProgressEvent) -> None:
        seen.append(event)
        # After `after` events, or in the middle of the arms' batched training: models
        # started, none finished.
        mid_batch = event.stage == "arms" and event.detail and "epoch" in event.detail and event.fraction > 0
        if (len(seen) == after) if after is not None else mid_batch:
            raised.append(time.perf_counter())
            raise _Cancelled

    config = _config(arms=(BaselineArm(), DPSGDArm(accountant="rdp")),
                     training=TrainingConfig(hidden=(8,), epochs=5, batch_size=32))
    with pytest.raises(_Cancelled):
        run_audit(data, config, progress=cancel, show_progress=show_progress)
    # Raised from inside the trainer's step loop, it surfaces at once (well within the
    # epoch the batch was in) and nothing reports after it.
    assert time.perf_counter() - raised[0] < 0.5
    assert len(raised) == 1 and seen[-1].stage == "arms" and seen[-1].stage_done == 0
    assert after is None or len(seen) == after
    assert set(threading.enumerate()) <= threads
    capsys.readouterr()


def test_trainers_report_advance_within_training() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 5)).astype(np.float32)
    rows = TrainingRows(X, (X[:, 0] > 0).astype(np.float32))
    jobs = [FitJob(arm=arm, data=rows, rates=np.zeros(400), seed=s, epsilon=3.0, delta=1e-5)
            for arm in (BaselineArm(), DPSGDArm(accountant="rdp")) for s in (0, 1)]
    config = TrainingConfig(hidden=(4,), epochs=3, batch_size=50)  # 8 steps an epoch
    for trainer, per_epoch in ((BatchedTrainer(), 8 // math.ceil(24 / REPORTS_PER_RUN)), (ReferenceTrainer(), 1)):
        calls: list[tuple[tuple[int, ...], float]] = []
        fitted: list[int] = []
        trainer.fit_many(jobs, config=config, device=torch.device("cpu"),
                         on_fitted=fitted.append, on_advance=lambda p, f, c=calls: c.append((tuple(p), f)))
        by_group: dict[tuple[int, ...], list[float]] = {}
        for positions, fraction in calls:
            by_group.setdefault(positions, []).append(fraction)
        # The batched trainer: the plain models advance together, then the DP ones; the
        # reference trainer one model at a time. Each starts at 0 and ends at 1.
        groups = [(0, 1), (2, 3)] if isinstance(trainer, BatchedTrainer) else [(0,), (1,), (2,), (3,)]
        assert list(by_group) == groups
        for fractions in by_group.values():
            assert fractions[0] == 0.0 and fractions[-1] == 1.0 and fractions == sorted(fractions)
            assert len(fractions) == 1 + 3 * per_epoch
        assert sorted(fitted) == [0, 1, 2, 3]


def test_work_estimates_count_batching_and_calibration_once() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1000, 5)).astype(np.float32)
    rows = TrainingRows(X, (X[:, 0] > 0).astype(np.float32))
    plain = [FitJob(arm=BaselineArm(), data=rows, rates=np.zeros(1000), seed=s) for s in range(8)]
    dp = [FitJob(arm=DPSGDArm(), data=rows, rates=np.zeros(1000), seed=s, epsilon=3.0, delta=1e-5)
          for s in range(2)]
    config = TrainingConfig(epochs=2, batch_size=100)
    stacked = BatchedTrainer().work(plain, config=config)
    alone = ReferenceTrainer().work(plain, config=config)
    # Stacked models share each step's overhead; alone, each pays it.
    assert all(s.row_passes < a.row_passes for s, a in zip(stacked, alone, strict=True))
    assert stacked[0].row_passes == pytest.approx(20 * (400 / 8 + 100))
    # DP-SGD's noise is calibrated once per mechanism, shared by the models of a batch.
    works = BatchedTrainer().work(dp, config=config)
    assert sum(w.setup_s for w in works) == pytest.approx(2.5)
    assert works[0].row_passes > stacked[0].row_passes
    # An executor counts it once over all its calls.
    other = TrainingRows(X.copy(), rows.y.copy())
    more = [FitJob(arm=DPSGDArm(), data=other, rates=np.zeros(1000), seed=5, epsilon=3.0, delta=1e-5)]
    works = LocalExecutor("batched").work([*dp, *more], config=config)
    assert sum(w.setup_s for w in works) == pytest.approx(2.5)


def test_cli_shows_progress_on_stderr(tmp_path: Path) -> None:
    res = CliRunner().invoke(main, ["run", "--dataset", "synthetic", "--rows", "600", "--seeds", "1",
                                    "--arms", "baseline,uniform_dropout", "--epochs", "1", "--hidden", "8",
                                    "--bootstrap", "0", "--mia", "loss", "--canaries", "0",
                                    "--no-report", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert "Training arms: 0/2 models" in res.stderr
    assert "Measuring: " in res.stderr and "steps" in res.stderr
    assert "Done: 2 models trained in " in res.stderr
    assert "Training arms" not in res.stdout
    quiet = CliRunner().invoke(main, ["run", "--dataset", "synthetic", "--rows", "600", "--seeds", "1",
                                      "--arms", "baseline", "--epochs", "1", "--hidden", "8", "--bootstrap",
                                      "0", "--canaries", "0", "--no-report", "--quiet", "--out", str(tmp_path)])
    assert quiet.exit_code == 0 and "Training arms" not in quiet.stderr


class _OldExecutor(Executor):
    """An executor written before on_advance: it reports finished models only."""

    name: ClassVar[str] = "old-style"

    def run(self, jobs: Sequence[FitJob], *, config: TrainingConfig, device: Any,  # type: ignore[override]
            task: Any = "classification", on_fitted: Any = None) -> list[FittedModel]:
        return LocalExecutor("batched").run(jobs, config=config, device=device, task=task, on_fitted=on_fitted)


def test_an_executor_without_on_advance_still_counts_every_model(data: Any) -> None:
    events: list[ProgressEvent] = []
    config = _config(arms=(BaselineArm(), UniformDropoutArm(p=0.3)),
                     privacy_audit=PrivacyAuditConfig(mia="loss", mia_bootstrap=0, canaries=0, mechanism_rows=0))
    run_audit(data, config, executor=_OldExecutor(), progress=events.append)
    fractions = [e.fraction for e in events]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert _last_of(events, "arms").stage_done == 4 and events[-1].done == events[-1].total == 4
    # Without step reports the fraction moves as models finish, by their estimated share.
    assert all(0 < b - a < 0.5 for a, b in zip(fractions, fractions[1:], strict=False) if b != a)
