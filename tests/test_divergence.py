"""Training that fails clearly: a non-finite loss, gradient, weight or prediction stops the
run with a TrainingError naming the arm, the seed and the step, and the likely cause; the
same in Python, the CLI and (in test_app.py) the app."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from audit import (
    AuditConfig,
    BaselineArm,
    BatchedTrainer,
    DataError,
    DPSGDArm,
    FitJob,
    ReferenceTrainer,
    TabularPreprocessor,
    TrainingConfig,
    TrainingError,
    TrainingRows,
    UniformDropoutArm,
    run_audit,
)
from audit.training import _stacked_mlp
from audit.training._divergence import NonFiniteWatch, finite_models

CPU = torch.device("cpu")
HUGE_LR = 1e30  # Adam's steps are about lr in size: weights overflow float32 within a few steps


def rows(n: int = 300, seed: int = 0) -> TrainingRows:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4)).astype(np.float32)
    y = (X[:, 0] + rng.normal(0, 1, n) > 0).astype(np.float32)
    return TrainingRows(X, y, name="train", feature_names=("a", "b", "c", "d"))


def jobs(data: TrainingRows) -> list[FitJob]:
    n = data.n
    return [
        FitJob(arm=BaselineArm(), data=data, rates=np.zeros(n), seed=0),
        FitJob(arm=UniformDropoutArm(p=0.3), data=data, rates=np.full(n, 0.3), seed=4),
        FitJob(arm=DPSGDArm(), data=data, rates=np.zeros(n), seed=7, epsilon=3.0, delta=1e-4),
    ]


STEP = re.compile(r"at step (\d+) of (\d+) \(epoch (\d+) of (\d+)\)")


@pytest.mark.parametrize("trainer", [BatchedTrainer(), ReferenceTrainer()], ids=["batched", "reference"])
def test_a_huge_learning_rate_stops_with_arm_seed_step_and_the_cause(trainer: object) -> None:
    config = TrainingConfig(hidden=(8,), epochs=3, batch_size=64, lr=HUGE_LR)
    with pytest.raises(TrainingError) as info:
        trainer.fit_many(jobs(rows()), config=config, device=CPU)  # type: ignore[attr-defined]
    message = str(info.value)
    assert message.startswith("Training diverged: the "), message
    assert "of the model of arm 'baseline' (seed 0) became NaN or infinite" in message
    step, steps, epoch, epochs = (int(v) for v in STEP.search(message).groups())  # type: ignore[union-attr]
    assert 1 <= step <= steps == 15 and epochs == 3 and epoch == (step - 1) // 5 + 1
    assert "Likely cause: a learning rate 2e+32 times the default; lower it, e.g. lr=0.005." in message
    assert info.value.param == "lr" and info.value.fix == {"lr": 0.005}


def test_the_first_bad_step_and_model_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    """A NaN planted in one model's weights at a known step is reported at that step, for
    that model's arm and seed, even though the watch is read only at progress points."""
    planted_step, planted_model = 7, 1
    step = _stacked_mlp.StackedOptimizer.step

    def poisoned(self: _stacked_mlp.StackedOptimizer, grads: dict[str, torch.Tensor]) -> None:
        step(self, grads)
        if self.t == planted_step:
            next(iter(self.params.values()))[planted_model].view(-1)[0] = float("nan")

    monkeypatch.setattr(_stacked_mlp.StackedOptimizer, "step", poisoned)
    # 60 steps: the watch is read every 3 steps (at 6, then 9), after the NaN of step 7.
    config = TrainingConfig(hidden=(8,), epochs=12, batch_size=64, lr=0.02)
    with pytest.raises(TrainingError) as info:
        BatchedTrainer().fit_many(jobs(rows()), config=config, device=CPU)
    message = str(info.value)
    assert ("the weights of the model of arm 'uniform_dropout' (seed 4) became NaN or infinite at step "
            "7 of 60 (epoch 2 of 12); training was stopped.") in message, message
    # Ordinary features and a learning rate only 4 times the default: no usual cause applies,
    # and it says so rather than blaming the learning rate.
    assert "none of the usual ones" in message and info.value.fix is None


def test_dp_sgd_updates_are_watched_before_they_are_applied(monkeypatch: pytest.MonkeyPatch) -> None:
    """A NaN in DP-SGD's noisy clipped mean is caught as a gradient, at its step."""
    from audit.training._privatizer import DPSGDPrivatizer

    planted, calls = 3, []
    noisy_mean = DPSGDPrivatizer.noisy_mean

    def poisoned(self: DPSGDPrivatizer, *args: object, **kw: object) -> dict[str, torch.Tensor]:
        update = noisy_mean(self, *args, **kw)  # type: ignore[arg-type]
        calls.append(1)
        return {k: v * float("nan") for k, v in update.items()} if len(calls) == planted else update

    monkeypatch.setattr(DPSGDPrivatizer, "noisy_mean", poisoned)
    with pytest.raises(TrainingError, match=r"the gradient of the model of arm 'dp_sgd' \(seed 7\) became NaN "
                                            r"or infinite at step 3 of "):
        BatchedTrainer().fit_many(jobs(rows())[2:], config=TrainingConfig(hidden=(8,), epochs=2), device=CPU)


def test_the_reference_trainer_names_the_first_bad_step(monkeypatch: pytest.MonkeyPatch) -> None:
    from audit.training import _reference

    make = _reference._make_optimizer

    def poisoning(model: torch.nn.Module, config: TrainingConfig) -> torch.optim.Optimizer:
        optimizer = make(model, config)
        step, taken = optimizer.step, []

        def poisoned_step(*args: object, **kw: object) -> object:
            out = step(*args, **kw)  # type: ignore[arg-type]
            taken.append(1)
            if len(taken) == 7:
                with torch.no_grad():
                    next(model.parameters()).view(-1)[0] = float("inf")
            return out

        optimizer.step = poisoned_step  # type: ignore[method-assign]
        return optimizer

    monkeypatch.setattr(_reference, "_make_optimizer", poisoning)
    with pytest.raises(TrainingError, match=r"the weights of the model of arm 'baseline' \(seed 0\) became "
                                            r"NaN or infinite at step 7 of 15 \(epoch 2 of 3\)"):
        ReferenceTrainer().fit_many(jobs(rows())[:1], config=TrainingConfig(hidden=(8,), epochs=3, batch_size=64),
                                    device=CPU)


def test_huge_regression_targets_are_named_as_the_cause() -> None:
    # Within the loader's limit (1.8e19), but 64 squared errors of 3e18 overflow float32.
    data = rows()
    huge = TrainingRows(data.X, data.y * 3e18, feature_names=data.feature_names)
    with pytest.raises(TrainingError, match=r"Likely cause: target values as large as 3e\+18, whose squared "
                                            r"errors summed over a batch overflow 32-bit floats"):
        BatchedTrainer().fit_many(jobs(huge)[:1], config=TrainingConfig(hidden=(8,), epochs=1, batch_size=64),
                                  device=CPU, task="regression")


def test_an_extreme_feature_is_named_as_the_likely_cause() -> None:
    data = rows()
    X = data.X.copy()
    X[17, 2] = 5e4  # 5e4 standard deviations: within every limit, but it dominates its products
    extreme = TrainingRows(X, data.y, feature_names=data.feature_names)
    config = TrainingConfig(hidden=(8,), epochs=2, lr=HUGE_LR)
    with pytest.raises(TrainingError) as info:
        BatchedTrainer().fit_many(jobs(extreme)[:1], config=config, device=CPU)
    assert ("also possible: feature 'c' is 5e+04 standard deviations from its training mean in row 18 of "
            "the training rows: cap or remove such outliers.") in str(info.value)


def test_ordinary_training_is_untouched_by_the_watch() -> None:
    # The watch only reads: the same jobs give the same weights as the reference trainer's
    # ground truth is tested elsewhere; here, training still finishes and predicts finitely.
    data = rows()
    fitted = BatchedTrainer().fit_many(jobs(data), config=TrainingConfig(hidden=(8,), epochs=2), device=CPU)
    assert all(np.isfinite(m.predict(data.X)).all() for m in fitted)


def test_a_model_predicting_nan_names_its_arm_seed_and_rows() -> None:
    data = rows()
    fitted = BatchedTrainer().fit_many(jobs(data)[1:2], config=TrainingConfig(hidden=(8,), epochs=1),
                                       device=CPU)[0]
    fitted.job = jobs(data)[1]
    X = data.X.copy()
    X[[2, 9], 1] = np.nan
    with pytest.raises(TrainingError) as info:
        fitted.predict(X)
    assert str(info.value).startswith(
        "the model of arm 'uniform_dropout' (seed 4) predicted NaN or infinite values for 2 of 300 rows "
        "(first at rows [3, 10] of the rows it scored). Likely cause: feature 'b' is NaN or infinite in "
        "row 3 of the rows it scored")


def test_finite_models_flags_each_model_on_its_own() -> None:
    a = torch.zeros((3, 2, 2))
    b = torch.zeros((3, 4))
    a[1, 0, 1] = float("nan")
    b[2, 3] = -float("inf")
    assert finite_models({"a": a, "b": b}).tolist() == [True, False, False]
    watch = NonFiniteWatch(3, CPU)
    for _ in range(4):
        watch.end_step()
    watch.gradient({"b": b})
    watch.end_step()
    first = watch.first()
    assert first is not None and (first.model, first.step, first.quantity) == (2, 5, "gradient")


# --------------------------------------------------------------------------- the encoder


def test_values_standardising_beyond_float32_are_refused_naming_column_value_row_and_range() -> None:
    train = pd.DataFrame({"age": [20.0, 30, 40, 50], "flag": [1.0] * 4, "job": ["a", "b", "a", "b"]})
    test = pd.DataFrame({"age": [25.0, 1e30], "flag": [1.0, 1e20], "job": ["a", "c"]}, index=[40, 41])
    pre = TabularPreprocessor().fit(train)
    with pytest.raises(DataError) as info:
        pre.transform(test)
    message = str(info.value)
    assert ("feature column 'age' has 1 value(s) more than 1.84e+19 standard deviations from its training "
            "rows' mean (first at data rows [42]: 1e+30; the training rows have mean 35 and standard "
            "deviation 11.18)") in message
    assert "feature column 'flag' has 1 value(s)" in message and "standard deviation 0)" in message
    assert "predictions become NaN" in message and info.value.param == "features"
    assert np.isfinite(pre.transform(test.iloc[:1])).all()  # the ordinary row alone encodes


# --------------------------------------------------------------------------- run_audit and the CLI


def people(n: int = 600) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(n, 2))
    return pd.DataFrame({"x0": x[:, 0], "x1": x[:, 1], "sex": rng.choice(["F", "M"], n),
                         "label": (x[:, 0] + rng.normal(0, 1, n) > 0).astype(int)})


def test_run_audit_raises_the_training_error_not_a_metric_traceback() -> None:
    # This run used to end in scikit-learn's "ValueError: Input contains NaN" from log-loss.
    config = AuditConfig(arms=(BaselineArm(),), seeds=1, n_bootstrap=0,
                         training=TrainingConfig(hidden=(8,), epochs=2, lr=HUGE_LR))
    with pytest.raises(TrainingError, match=r"^Training diverged: the \w+ of the model of arm 'baseline' "
                                            r"\(seed 0\) became NaN or infinite at step \d+ of \d+"):
        run_audit(people(), config, target="label", sensitive="sex")


def fairpriv(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fairpriv_cli", *args], capture_output=True, text=True,
                          timeout=300)


QUICK = ("--target", "label", "--sensitive", "sex", "--arms", "baseline", "--seeds", "1", "--epochs", "2",
         "--hidden", "8", "--bootstrap", "0", "--canaries", "0", "--mia", "none")


def test_cli_diverged_training_is_one_message_in_flags(tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    people().to_csv(path, index=False)
    done = fairpriv("run", "--dataset", str(path), *QUICK, "--lr", "1e30", "--out", str(tmp_path / "out"))
    assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr
    error = [line for line in done.stderr.splitlines() if line.startswith("Error:")]
    assert len(error) == 1 and "Training diverged" in error[0] and "(seed 0)" in error[0], done.stderr
    assert "e.g. --lr 0.005" in error[0] and "lr=" not in error[0], error[0]


def test_cli_huge_values_file_is_one_message_naming_column_value_and_row(tmp_path: Path) -> None:
    frame = people()
    frame.loc[3, "x0"] = 1e308  # standardising it used to give NaN and a traceback from log-loss
    path = tmp_path / "huge.csv"
    frame.to_csv(path, index=False)
    done = fairpriv("run", "--dataset", str(path), *QUICK, "--out", str(tmp_path / "out"))
    assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr
    assert ("Error: feature column 'x0' has 1 value(s) beyond ±3.4e+38 (first at data rows [4]: 1e+308)"
            in done.stderr), done.stderr
