"""ReferenceTrainer, TrainingConfig, resolve_device and the trainer registry."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import torch
from fit_helpers import fit_one
from torch import nn

from audit import (
    GUARANTEE_ASSUMPTIONS,
    MLP,
    NO_GUARANTEE,
    Arm,
    BaselineArm,
    ConfigError,
    DPSGDArm,
    FittedModel,
    GroupDropoutArm,
    ReferenceTrainer,
    TabularPreprocessor,
    TrainingConfig,
    UniformDropoutArm,
    available_trainers,
    compute_epsilon,
    get_trainer,
    load_dataset,
    parse_hidden_layers,
    split_dataset,
)
from audit.training._config import resolve_device

CPU = torch.device("cpu")
SMALL = TrainingConfig(hidden=(8,), epochs=3, batch_size=64, lr=0.01)
EPSILON, DELTA = 3.0, 1e-5


@dataclass(frozen=True)
class Data:
    X: np.ndarray
    y: np.ndarray
    groups: np.ndarray
    labels: tuple[str, ...]
    X_test: np.ndarray


@pytest.fixture(scope="module")
def data() -> Data:
    ds = load_dataset("synthetic", n_rows=600)
    splits = split_dataset(ds, seed=0)
    train = ds.features.iloc[splits.train]
    pre = TabularPreprocessor().fit(train)
    return Data(
        X=pre.transform(train), y=ds.y[splits.train], groups=splits.groups[splits.train],
        labels=ds.group_labels, X_test=pre.transform(ds.features.iloc[splits.test]),
    )


def _fit(arm: Arm, data: Data, *, seed: int = 0, config: TrainingConfig = SMALL,
         trainer: ReferenceTrainer | None = None, device: torch.device = CPU) -> FittedModel:
    private = isinstance(arm, DPSGDArm)
    return fit_one(trainer or ReferenceTrainer(),
        arm=arm, X=data.X, y=data.y, rates=arm.row_dropout_rates(data.groups, data.labels),
        seed=seed, config=config, device=device,
        epsilon=EPSILON if private else None, delta=DELTA if private else None,
    )


ARMS: list[Arm] = [
    BaselineArm(),
    UniformDropoutArm(p=0.3),
    GroupDropoutArm(rates={"majority": 0.1, "minority": 0.5}),
    DPSGDArm(accountant="rdp"),
]


@pytest.mark.parametrize("arm", ARMS, ids=lambda a: a.kind)
def test_same_seed_is_bit_identical_and_seed_matters(arm: Arm, data: Data) -> None:
    first = _fit(arm, data, seed=5).predict(data.X_test)
    again = _fit(arm, data, seed=5).predict(data.X_test)
    np.testing.assert_array_equal(first, again)
    other = _fit(arm, data, seed=6).predict(data.X_test)
    assert not np.array_equal(first, other)


def test_global_torch_rng_is_untouched(data: Data) -> None:
    torch.manual_seed(2024)
    state = torch.get_rng_state()
    expected_next = torch.rand(3)
    torch.set_rng_state(state)
    for arm in (UniformDropoutArm(p=0.3), DPSGDArm(accountant="rdp")):
        _fit(arm, data, seed=1)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(torch.rand(3), expected_next)


def test_caller_seed_does_not_change_result(data: Data) -> None:
    # Everything random inside fit is a function of `seed` alone.
    torch.manual_seed(1)
    first = _fit(UniformDropoutArm(p=0.3), data, seed=3).predict(data.X_test)
    torch.manual_seed(999)
    second = _fit(UniformDropoutArm(p=0.3), data, seed=3).predict(data.X_test)
    np.testing.assert_array_equal(first, second)


def test_training_learns_separable_problem() -> None:
    rng = np.random.default_rng(0)
    w = np.array([1.0, -0.5, 0.25])

    def sample(n: int) -> tuple[np.ndarray, np.ndarray]:
        X = rng.normal(size=(n, 3)).astype(np.float32)
        return X, (X @ w > 0).astype(np.float32)

    X, y = sample(400)
    X_test, y_test = sample(2000)
    fitted = fit_one(ReferenceTrainer(),
        arm=BaselineArm(), X=X, y=y, rates=np.zeros(400, dtype=np.float32), seed=0,
        config=TrainingConfig(hidden=(), epochs=30, batch_size=32, lr=0.05), device=CPU,
        epsilon=None, delta=None,
    )
    accuracy = float(((fitted.predict(X_test) > 0.5) == (y_test > 0.5)).mean())
    # The classes are separated by a hyperplane (Bayes accuracy 1); an untrained
    # model is at ~0.5 and a fitted logistic model at ~0.97+, so 0.9 is a clear bar.
    assert accuracy > 0.9


@pytest.mark.parametrize("arm", ARMS[:3], ids=lambda a: a.kind)
def test_non_private_arms_have_no_guarantee(arm: Arm, data: Data) -> None:
    ledger = _fit(arm, data).ledger
    assert ledger.mechanism == arm.kind
    assert ledger.epsilon is None
    assert ledger.noise_multiplier is None and ledger.delta is None
    assert ledger.guarantee == NO_GUARANTEE == "no guarantee"


@pytest.mark.parametrize("accountant", ["rdp", "prv"])
def test_dp_sgd_ledger(accountant: str, data: Data) -> None:
    arm = DPSGDArm(accountant=accountant, max_grad_norm=0.7)
    ledger = _fit(arm, data).ledger
    n = data.X.shape[0]
    batches = math.ceil(n / SMALL.batch_size)
    assert ledger.mechanism == "dp_sgd"
    assert ledger.epsilon is not None and 0 < ledger.epsilon <= EPSILON
    # calibrated tightly (Opacus' search stops within 0.01 of the target)
    assert ledger.epsilon > EPSILON - 0.05
    assert ledger.noise_multiplier is not None and ledger.noise_multiplier > 0
    assert ledger.sample_rate == 1 / batches
    assert ledger.steps == SMALL.epochs * batches
    assert ledger.delta == DELTA
    assert ledger.accountant == accountant
    assert ledger.max_grad_norm == 0.7
    assert ledger.guarantee == GUARANTEE_ASSUMPTIONS
    assert ledger.sample_rate is not None and ledger.steps is not None
    recomputed = compute_epsilon(sample_rate=ledger.sample_rate,
                                 noise_multiplier=ledger.noise_multiplier, steps=ledger.steps,
                                 delta=DELTA, accountant=accountant)
    assert ledger.epsilon == pytest.approx(recomputed, rel=1e-9)


def test_dp_sgd_batch_larger_than_data(data: Data) -> None:
    config = TrainingConfig(hidden=(4,), epochs=2, batch_size=10_000)
    ledger = _fit(DPSGDArm(accountant="rdp"), data, config=config).ledger
    assert ledger.sample_rate == 1.0
    assert ledger.steps == 2


def test_dp_model_is_plain_module_after_training(data: Data) -> None:
    fitted = _fit(DPSGDArm(accountant="rdp"), data)
    assert type(fitted.model) is MLP
    for module in fitted.model.modules():
        assert not module._forward_hooks and not module._backward_hooks
    for p in fitted.model.parameters():
        assert not hasattr(p, "grad_sample")
    # still usable for a plain forward/backward after Opacus let go of it
    fitted.model.train()
    fitted.model(torch.as_tensor(data.X[:4]), None).sum().backward()


class _RecordingMLP(MLP):
    """An MLP that records the size of every training batch it sees."""

    def __init__(self, in_features: int, hidden: Sequence[int]) -> None:
        super().__init__(in_features, hidden)
        self.batch_sizes: list[int] = []

    def forward(self, x: torch.Tensor, rates: torch.Tensor | None = None) -> torch.Tensor:
        if self.training:
            self.batch_sizes.append(int(x.shape[0]))
        return super().forward(x, rates)


def test_empty_poisson_batches_are_handled() -> None:
    # n = 3, batch_size 1: q = 1/3, and a step draws no row with prob (2/3)^3 = 0.30,
    # so 30 steps are all but certain to include empty draws (asserted below).
    X = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]], dtype=np.float32)
    y = np.array([1.0, 0.0, 1.0], dtype=np.float32)
    models: list[_RecordingMLP] = []

    def factory(d: int, hidden: Sequence[int]) -> nn.Module:
        models.append(_RecordingMLP(d, hidden))
        return models[-1]

    fitted = fit_one(ReferenceTrainer(factory),
        arm=DPSGDArm(accountant="rdp"), X=X, y=y, rates=np.zeros(3, dtype=np.float32), seed=0,
        config=TrainingConfig(hidden=(4,), epochs=10, batch_size=1), device=CPU,
        epsilon=5.0, delta=DELTA,
    )
    sizes = models[0].batch_sizes
    assert len(sizes) == 30
    assert 0 in sizes
    assert fitted.ledger.sample_rate == pytest.approx(1 / 3)
    assert fitted.ledger.steps == 30
    pred = fitted.predict(X)
    assert pred.shape == (3,) and np.isfinite(pred).all()


def test_rates_are_used_in_training(data: Data) -> None:
    arm = UniformDropoutArm(p=0.5)
    n = data.X.shape[0]
    common: dict[str, Any] = {"arm": arm, "X": data.X, "y": data.y, "seed": 0, "config": SMALL,
                              "device": CPU, "epsilon": None, "delta": None}
    without = fit_one(ReferenceTrainer(), rates=np.zeros(n, dtype=np.float32), **common)
    with_dropout = fit_one(ReferenceTrainer(), rates=np.full(n, 0.5, dtype=np.float32), **common)
    assert not np.array_equal(without.predict(data.X_test), with_dropout.predict(data.X_test))


def test_predictions_are_probabilities_and_regression_is_not_squashed(data: Data) -> None:
    pred = _fit(BaselineArm(), data).predict(data.X_test)
    assert pred.shape == (data.X_test.shape[0],)
    assert ((pred > 0) & (pred < 1)).all()
    assert _fit(BaselineArm(), data).predict(data.X_test[:0]).shape == (0,)

    y = 10.0 + 5.0 * data.X[:, 0]  # a target far outside [0, 1]
    fitted = fit_one(ReferenceTrainer(),
        arm=BaselineArm(), X=data.X, y=y, rates=np.zeros_like(y, dtype=np.float32), seed=0,
        config=TrainingConfig(hidden=(8,), epochs=20, batch_size=64, lr=0.02), device=CPU,
        epsilon=None, delta=None, task="regression",
    )
    assert fitted.task == "regression"
    assert fitted.predict(data.X_test).mean() > 2.0


def test_no_rows_and_missing_budget_errors(data: Data) -> None:
    with pytest.raises(ConfigError, match="no training rows"):
        fit_one(ReferenceTrainer(), arm=BaselineArm(), X=data.X[:0], y=data.y[:0],
                               rates=np.zeros(0, dtype=np.float32), seed=0, config=SMALL,
                               device=CPU, epsilon=None, delta=None)
    with pytest.raises(ConfigError, match="dp_sgd needs a target epsilon and delta"):
        fit_one(ReferenceTrainer(), arm=DPSGDArm(), X=data.X, y=data.y,
                               rates=np.zeros(data.X.shape[0], dtype=np.float32), seed=0,
                               config=SMALL, device=CPU, epsilon=None, delta=DELTA)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"hidden": (8, 0)}, r"TrainingConfig hidden must be a sequence of integers >= 1, not \(8, 0\)"),
        ({"hidden": "64"}, r"TrainingConfig hidden must be a sequence of integers >= 1, not '64'"),
        ({"epochs": 0}, r"TrainingConfig epochs must be an integer >= 1, not 0"),
        ({"epochs": True}, r"TrainingConfig epochs must be an integer >= 1, not True"),
        ({"batch_size": 0}, r"TrainingConfig batch_size must be an integer >= 1, not 0"),
        ({"lr": 0.0}, r"TrainingConfig lr must be a finite number > 0, not 0.0"),
        ({"lr": float("nan")}, r"TrainingConfig lr must be a finite number > 0, not nan"),
        ({"optimizer": "rmsprop"}, r"optimizer must be one of \['adam', 'sgd'\], not 'rmsprop'"),
    ],
)
def test_training_config_validation(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        TrainingConfig(**kwargs)


@pytest.mark.parametrize("field_name", ["epochs", "batch_size"])
def test_training_config_rejects_fractional_counts(field_name: str) -> None:
    with pytest.raises(ConfigError, match=field_name):
        TrainingConfig(**{field_name: 2.5})  # type: ignore[arg-type]


def test_training_config_normalises_hidden() -> None:
    assert TrainingConfig(hidden=[16, 4]).hidden == (16, 4)  # type: ignore[arg-type]
    assert TrainingConfig(hidden=()).hidden == ()


@pytest.mark.parametrize(("text", "widths"), [
    ("64", (64,)), ("64,32", (64, 32)), (" 64 , 32 ", (64, 32)), ("", ()), ("   ", ()),
])
def test_parse_hidden_layers(text: str, widths: tuple[int, ...]) -> None:
    assert parse_hidden_layers(text) == widths
    assert TrainingConfig(hidden=parse_hidden_layers(text)).hidden == widths


@pytest.mark.parametrize("text", ["64;32", "a", "64,,32", "64,", "-1", "6.4", "0", "64,0", "+8", "1_0"])
def test_parse_hidden_layers_rejects_bad_text(text: str) -> None:
    with pytest.raises(ConfigError, match="hidden") as info:
        parse_hidden_layers(text)
    assert repr(text) in str(info.value)
    assert "--" not in str(info.value)  # an engine message: no command-line flags


def test_resolve_device_cpu_and_auto() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    with pytest.raises(ConfigError, match=r"device must be one of \['auto', 'cpu', 'cuda'\], "
                                          r"not 'tpu'"):
        resolve_device("tpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA GPU is available here")
def test_resolve_device_cuda_without_gpu() -> None:
    with pytest.raises(ConfigError, match="device 'cuda' requested but no CUDA GPU"):
        resolve_device("cuda")


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_training_matches_cpu(data: Data) -> None:
    cuda = resolve_device("cuda")
    # SGD (not Adam, whose m/sqrt(v) amplifies rounding in near-zero gradients) and no
    # dropout (CPU and CUDA draw different masks): init and shuffling come from CPU
    # generators, so CUDA and CPU differ only by float32 rounding (~1e-6 per op).
    config = TrainingConfig(hidden=(8,), epochs=3, batch_size=64, lr=0.05, optimizer="sgd")
    cuda_state = torch.cuda.get_rng_state()
    on_gpu = _fit(BaselineArm(), data, config=config, device=cuda)
    on_cpu = _fit(BaselineArm(), data, config=config)
    assert torch.equal(torch.cuda.get_rng_state(), cuda_state)
    assert next(on_gpu.model.parameters()).device.type == "cuda"
    np.testing.assert_allclose(on_gpu.predict(data.X_test), on_cpu.predict(data.X_test),
                               atol=1e-4)
    dp = _fit(DPSGDArm(accountant="rdp"), data, device=cuda)
    assert np.isfinite(dp.predict(data.X_test)).all()
    assert dp.ledger.epsilon == _fit(DPSGDArm(accountant="rdp"), data).ledger.epsilon


def test_trainer_registry() -> None:
    assert "reference" in available_trainers()
    assert isinstance(get_trainer("reference"), ReferenceTrainer)
    with pytest.raises(ConfigError, match=r"unknown trainer 'nope'; valid: \[.*'reference'.*\]"):
        get_trainer("nope")


class _LinearWithRates(nn.Module):
    """A custom model: not an MLP, ignores the hidden widths, uses rates as an input scale."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.linear = nn.Linear(d, 1)

    def forward(self, x: torch.Tensor, rates: torch.Tensor | None = None) -> torch.Tensor:
        if rates is not None and self.training:
            x = x * (1 - rates).unsqueeze(1)
        return self.linear(x).squeeze(-1)


@pytest.mark.parametrize("arm", [UniformDropoutArm(p=0.2), DPSGDArm(accountant="rdp")],
                         ids=lambda a: a.kind)
def test_custom_model_factory(arm: Arm, data: Data) -> None:
    calls: list[tuple[int, tuple[int, ...]]] = []

    def factory(d: int, hidden: Sequence[int]) -> nn.Module:
        calls.append((d, tuple(hidden)))
        return _LinearWithRates(d)

    fitted = _fit(arm, data, trainer=ReferenceTrainer(factory))
    assert calls == [(data.X.shape[1], SMALL.hidden)]
    assert isinstance(fitted.model, _LinearWithRates)
    pred = fitted.predict(data.X_test)
    assert pred.shape == (data.X_test.shape[0],)
    assert np.isfinite(pred).all() and ((pred > 0) & (pred < 1)).all()
    # it was trained: weights differ from a fresh model with the same seed's init
    torch.manual_seed(0)
    before = _LinearWithRates(data.X.shape[1])
    assert not torch.equal(before.linear.weight, fitted.model.linear.weight.cpu())


def test_reference_dp_takes_the_steps_it_accounts_for() -> None:
    """At 93 steps per epoch Opacus' sampler would take int(1/q) = 92 (float rounding)."""
    from audit import DPSGDArm, ReferenceTrainer

    n = 93 * 256 - 100  # ceil(n / 256) = 93
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 4)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.float32)
    assert int(1 / (1 / 93)) == 92  # the rounding this test is about
    fitted = fit_one(ReferenceTrainer(), arm=DPSGDArm(), X=X, y=y, rates=np.zeros(n, np.float32), seed=0,
                                    config=TrainingConfig(epochs=1, hidden=(4,)),
                                    device=torch.device("cpu"), epsilon=3.0, delta=1e-5)
    assert fitted.ledger.steps == 93
    assert 0 < fitted.ledger.epsilon <= 3.0
