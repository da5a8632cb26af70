"""The white-box canary audit: the Gaussian-DP one-run bound, the canary scores, what the
trainer plants and observes, broken DP-SGD caught and the honest one never flagged."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from audit import AuditConfig, LocalExecutor, PrivacyAuditConfig, make_arm, run_audit
from audit.privacy._audit_bound import epsilon_lower_bound
from audit.privacy._fdp_bound import (
    gaussian_dp_delta,
    gaussian_dp_epsilon,
    gaussian_dp_rejects,
    mu_lower_bound,
)
from audit.privacy._whitebox_audit import (
    gradient_canary_scores,
    guesses_from_scores,
    in_guesses_from_scores,
    row_canary_scores,
)
from audit.training._batched import BatchedModelSpec, BatchedTrainer, BatchStats, DPRowCount, train_mlp_batch
from audit.training._broken_dp import NoiseDividedBy4, SkippedClipping
from audit.training._config import TrainingConfig
from audit.training._stacked_mlp import StackedModels, row_loss
from audit.training._whitebox import GradientCanaries, WhiteBoxProbe, stack_rows

# --------------------------------------------------------------------------- Gaussian-DP bound


def test_gaussian_dp_bound_known_answer() -> None:
    # Reference values from an independent implementation of the paper's Algorithm 3,
    # written from the paper's text (m = 1e5 canaries, 1500 guesses, 1429 right).
    mu = mu_lower_bound(canaries=100_000, guesses=1500, correct=1429, confidence=0.95)
    assert mu == pytest.approx(0.7818, abs=5e-4)
    assert gaussian_dp_epsilon(mu, 1e-5) == pytest.approx(3.30, abs=0.01)
    # Steinke et al. on the same observation prove less (2.67 by the same reference).
    steinke = epsilon_lower_bound(canaries=100_000, guesses=1500, correct=1429, delta=1e-5)
    assert steinke < gaussian_dp_epsilon(mu, 1e-5)


def test_gaussian_dp_curve_values() -> None:
    # delta(0) of mu-GDP is the total variation 2 Phi(mu/2) - 1; for mu = 1 that is 0.3829.
    assert gaussian_dp_delta(1.0, 0.0) == pytest.approx(0.382925, abs=1e-6)
    eps = gaussian_dp_epsilon(1.0, 1e-5)
    assert gaussian_dp_delta(1.0, eps) >= 1e-5 >= gaussian_dp_delta(1.0, eps + 1e-6)
    assert gaussian_dp_epsilon(0.0, 1e-5) == 0.0


def test_gaussian_dp_curve_in_the_far_tail() -> None:
    """Large mu (a dropout arm's bound can be several): delta(eps) against the curve written
    with math.erfc, which keeps its relative precision where 1 + erf rounds to 0, and no
    overflow of e^eps beyond eps ~ 709."""
    def delta_erfc(mu: float, eps: float) -> float:
        phi = lambda z: 0.5 * math.erfc(-z / math.sqrt(2))  # noqa: E731
        return phi(-eps / mu + mu / 2) - math.exp(eps) * phi(-eps / mu - mu / 2)

    for mu, eps in ((5.0, 33.1), (5.0, 30.0), (8.0, 60.0)):
        assert gaussian_dp_delta(mu, eps) == pytest.approx(delta_erfc(mu, eps), rel=1e-9)
    eps = gaussian_dp_epsilon(5.0, 1e-5)
    assert delta_erfc(5.0, eps) >= 1e-5 >= delta_erfc(5.0, eps + 1e-6)
    assert math.isfinite(gaussian_dp_epsilon(40.0, 1e-5))


def test_gaussian_dp_bound_edges_and_monotone() -> None:
    assert mu_lower_bound(canaries=1000, guesses=100, correct=50, confidence=0.95) == 0.0
    assert mu_lower_bound(canaries=1000, guesses=0, correct=0, confidence=0.95) == 0.0
    bounds = [mu_lower_bound(canaries=1000, guesses=100, correct=c, confidence=0.95)
              for c in (60, 70, 80, 90, 100)]
    assert bounds == sorted(bounds) and bounds[0] < bounds[-1]
    assert gaussian_dp_rejects(0.1, canaries=1000, guesses=100, correct=95, beta=0.05)
    assert not gaussian_dp_rejects(8.0, canaries=1000, guesses=100, correct=95, beta=0.05)


def test_gaussian_dp_bound_is_valid_by_simulation() -> None:
    """Against an exactly mu-GDP mechanism (scores N(mu, 1) in, N(0, 1) out), the bound may
    exceed the true mu in at most 5% of runs; it should also beat Steinke et al.'s."""
    rng = np.random.default_rng(2024)
    mu, m, k, runs = 1.0, 2000, 40, 100
    above, tighter = 0, 0
    for _ in range(runs):
        included = rng.random(m) < 0.5
        scores = rng.standard_normal(m) + mu * included
        guesses, correct = guesses_from_scores(scores, included, k)
        mu_hat = mu_lower_bound(canaries=m, guesses=guesses, correct=correct, confidence=0.95)
        above += mu_hat > mu
        steinke = epsilon_lower_bound(canaries=m, guesses=guesses, correct=correct, delta=1e-5)
        tighter += gaussian_dp_epsilon(mu_hat, 1e-5) >= steinke
    # 5% of 100 runs is 5; P[Binomial(100, 0.05) > 11] < 0.5%, so 11 allows for chance
    # while a bound that is wrong by design (exceeding more often) fails.
    assert above <= 11
    assert tighter >= 0.9 * runs


# --------------------------------------------------------------------------- scores


def test_gradient_canary_scores_rank_included_canaries_first() -> None:
    rng = np.random.default_rng(0)
    sigma, q, steps, m = 0.8, 0.02, 500, 2000
    included = rng.random(m) < 0.5
    sampled = (rng.random((steps, m)) < q) & included
    z = sampled + sigma * rng.standard_normal((steps, m))
    scores = gradient_canary_scores(z, noise_multiplier=sigma, sample_rate=q)
    # Same data, the log-likelihood ratio separates better than the plain sum
    # (its AUC here is about 0.72 against 0.64; 0.03 leaves room for the sample).
    from scipy.stats import mannwhitneyu

    def auc(s: np.ndarray) -> float:
        return float(mannwhitneyu(s[included], s[~included]).statistic / (included.sum() * (~included).sum()))

    assert auc(scores) > auc(z.sum(axis=0)) + 0.03
    with pytest.raises(Exception, match="noise_multiplier"):
        gradient_canary_scores(z, noise_multiplier=0.0, sample_rate=q)


def test_row_canary_scores_take_the_largest_match_and_guess_in_only() -> None:
    p = np.array([[0.1, 0.9, 0.2], [0.8, 0.3, 0.1], [0.0, 0.5, 0.4], [0.0, 0.1, 0.7]])
    np.testing.assert_array_equal(row_canary_scores(p), [0.8, 0.9, 0.7])
    guesses, correct = guesses_from_scores(np.array([3.0, 2.0, 1.0, 0.0]),
                                           np.array([True, False, True, False]), 1)
    assert (guesses, correct) == (2, 2)
    included = np.array([True, False, True, False])
    assert in_guesses_from_scores(np.array([3.0, 2.0, 1.0, 0.0]), included, 1) == (1, 1)
    assert in_guesses_from_scores(np.array([3.0, 2.0, 1.0, 0.0]), included, 3) == (3, 2)
    assert in_guesses_from_scores(np.array([3.0, 2.0, 1.0, 0.0]), included, 9) == (4, 2)


# --------------------------------------------------------------------------- trainer


def _toy(n: int = 600, d: int = 5, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.float32)
    return torch.as_tensor(X), torch.as_tensor(y)


def _dp_spec(noise: float, q: float = 0.1) -> BatchedModelSpec:
    return BatchedModelSpec(seed=3, rates=np.zeros(600), lr=0.01, stream="dp_sgd",
                            max_grad_norm=1.0, noise_multiplier=noise, sample_rate=q)


def _observe_gradient_canaries(trainer_engine: object | None = None) -> tuple[np.ndarray, np.ndarray]:
    X, y = _toy()
    included = np.arange(40) % 2 == 0
    stats = BatchStats()
    kwargs = {} if trainer_engine is None else {"engine": trainer_engine}
    train_mlp_batch(X, y, [_dp_spec(1e-9)], config=TrainingConfig(hidden=(8,), epochs=2, batch_size=60),
                    stats=stats, dp_rows=DPRowCount(10, 640),
                    probe=WhiteBoxProbe(gradient=GradientCanaries(included, 4.0)), **kwargs)  # type: ignore[arg-type]
    obs = stats.traces[0].gradient_observation
    assert obs is not None and obs.shape == (20, 40)
    return obs, included


def test_gradient_canaries_are_clipped_sampled_and_observed() -> None:
    """With (almost) no noise, an included canary shows exactly its clipped size (1 in
    units of C) at the steps it was sampled and 0 otherwise; an excluded one always 0."""
    obs, included = _observe_gradient_canaries()
    assert np.abs(obs[:, ~included]).max() < 1e-4
    seen = obs[:, included]
    assert np.all((np.abs(seen) < 1e-4) | (np.abs(seen - 1.0) < 1e-4))
    # Poisson sampling at q = 0.1 over 20 steps and 20 canaries: about 40 appearances;
    # P[Binomial(400, 0.1) outside [20, 60]] < 1e-4.
    assert 20 <= int((seen > 0.5).sum()) <= 60


def test_skipped_clipping_lets_gradient_canaries_in_at_full_size() -> None:
    from audit.training._batched import BatchEngine

    obs, included = _observe_gradient_canaries(BatchEngine(privatizer=SkippedClipping()))
    seen = obs[:, included]
    assert np.all((np.abs(seen) < 1e-4) | (np.abs(seen - 4.0) < 1e-3)) and (seen > 3.5).any()


def test_gradient_canaries_do_not_touch_the_model() -> None:
    """The audit block is privatised after the model's parameters and sampled after the
    real rows: the model trained with canaries is the model trained without them."""
    X, y = _toy()
    config = TrainingConfig(hidden=(8,), epochs=2, batch_size=60)
    plain = train_mlp_batch(X, y, [_dp_spec(1.0)], config=config, dp_rows=DPRowCount(10, 640))[0]
    probe = WhiteBoxProbe(gradient=GradientCanaries(np.arange(40) % 2 == 0, 4.0))
    audited = train_mlp_batch(X, y, [_dp_spec(1.0)], config=config, dp_rows=DPRowCount(10, 640),
                              probe=probe)[0]
    for name in plain:
        torch.testing.assert_close(plain[name], audited[name], rtol=0, atol=0)


# --------------------------------------------------------------------------- audits


def _dp_audit(seeds: int | tuple[int, ...], privatizer: object | None = None, epsilon: float = 3.0):  # noqa: ANN202
    config = AuditConfig(arms=(make_arm("dp_sgd", epsilon=epsilon),), seeds=seeds, n_bootstrap=0,
                         training=TrainingConfig(epochs=5),
                         privacy_audit=PrivacyAuditConfig(mia="none", canaries=200, white_box_canaries=0,
                                                          gradient_canaries=5000))
    executor = None if privatizer is None else LocalExecutor(BatchedTrainer(privatizer=privatizer))  # type: ignore[arg-type]
    return run_audit("synthetic", config, n_rows=4000, executor=executor)


@pytest.mark.parametrize("broken", [NoiseDividedBy4, SkippedClipping], ids=["noise/4", "no clipping"])
def test_broken_dp_sgd_is_flagged(broken: type) -> None:
    result = _dp_audit(1, broken())
    gradient = result.empirical[result.empirical["audit"] == "white_box_gradient"]
    assert gradient["dp_violation"].all(), gradient[["epsilon_lower_bound", "run_epsilon"]]
    assert result.dp_violations == ["dp_sgd"]


def test_honest_dp_sgd_is_never_flagged_in_20_runs() -> None:
    """20 independent canary runs (one per seed) of the honest trainer at epsilon 3.

    The audit tests each seed at confidence 1 - 0.05/20 (Bonferroni), so if the trainer
    is (3, delta)-DP the chance that any of the 20 runs is flagged is at most 5%: a flag
    here is evidence of a bug at 95% family-wise confidence."""
    result = _dp_audit(20)
    emp = result.empirical
    assert emp["seed"].nunique() == 20
    assert not emp["dp_violation"].any()
    bounds = emp.loc[emp["audit"] == "white_box_gradient", "epsilon_lower_bound"]
    assert (bounds <= emp["run_epsilon"].max()).all() and math.isfinite(float(bounds.max()))


def _masked_first_layer_gradient(params: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor,
                                  masks: tuple[torch.Tensor, torch.Tensor] | None) -> torch.Tensor:
    """One row's gradient on the first layer by autograd, with inverted dropout masks."""
    leaves = {n: v[0].clone().requires_grad_(True) for n, v in params.items()}
    a = x if masks is None else x * masks[0]
    h = torch.relu(a @ leaves["hidden.0.weight"].T + leaves["hidden.0.bias"])
    if masks is not None:
        h = h * masks[1]
    out = (h @ leaves["output.weight"].T + leaves["output.bias"]).squeeze()
    loss = torch.nn.functional.binary_cross_entropy_with_logits(out, y)
    return torch.autograd.grad(loss, [leaves["hidden.0.weight"]])[0]


@pytest.mark.parametrize("dropout", [0.0, 0.5], ids=["no dropout", "dropout 0.5"])
def test_row_canary_matches_find_the_canaries_in_an_update(dropout: float) -> None:
    """A batch of 256 real rows plus canaries 1 and 3 (their gradients by autograd, with
    dropout masks on inputs and hidden units that the matcher is not told): those two
    match to within 1e-3 of 1, the eight others stay below 0.99 (a random direction's
    best cosine over 16 rows on 10 or so coordinates is ~0.8)."""
    from audit.training._whitebox import row_canary_matches

    gen = torch.Generator().manual_seed(3)
    d, hidden = 12, 16
    params = {"hidden.0.weight": torch.randn(1, hidden, d, generator=gen) / d ** 0.5,
              "hidden.0.bias": torch.randn(1, hidden, generator=gen) * 0.1,
              "output.weight": torch.randn(1, 1, hidden, generator=gen) / hidden ** 0.5,
              "output.bias": torch.zeros(1, 1)}
    canaries = torch.randn(10, d, generator=gen) * 1000.0
    real = torch.randn(256, d, generator=gen)
    real_y = (torch.rand(256, generator=gen) < 0.5).float()

    def masks() -> tuple[torch.Tensor, torch.Tensor] | None:
        if dropout == 0:
            return None
        keep = 1 - dropout
        return ((torch.rand(d, generator=gen) < keep) / keep, (torch.rand(hidden, generator=gen) < keep) / keep)

    grads = [_masked_first_layer_gradient(params, real[i], real_y[i], masks()) for i in range(256)]
    for i in (1, 3):
        # Each canary's label disagrees with the network's sign under its own masks, so
        # that its gradient is large (a canary whose label is already fitted shows nothing).
        mask = masks()
        a = canaries[i] if mask is None else canaries[i] * mask[0]
        h = torch.relu(a @ params["hidden.0.weight"][0].T + params["hidden.0.bias"][0])
        logit = ((h if mask is None else h * mask[1]) @ params["output.weight"][0].T).item()
        grads.append(_masked_first_layer_gradient(params, canaries[i], torch.tensor(float(logit < 0)), mask))
    block = torch.stack(grads).sum(0) / len(grads)
    update = {"hidden.0.weight": block[None]}
    models = StackedModels(torch.nn.Identity(), params, "ghost", row_loss("classification"))
    got = row_canary_matches(models, stack_rows(canaries, 1), update)[0].numpy()
    assert got[[1, 3]].min() > 0.999, got
    assert np.delete(got, [1, 3]).max() < 0.99, got
    # Without the canaries, nothing matches.
    plain = {"hidden.0.weight": (torch.stack(grads[:256]).sum(0) / 256)[None]}
    assert row_canary_matches(models, stack_rows(canaries, 1), plain)[0].max() < 0.99


def test_dropout_arms_white_box_rows_bound_is_above_3() -> None:
    """The reference text's claim, measured: on synthetic data (6,000 rows, 4 epochs) the
    row canaries prove both dropout arms (p = 0.5) leak more than epsilon 3 allows, while
    the same canaries prove nothing against DP-SGD at epsilon 3."""
    arms = (make_arm("uniform_dropout", p=0.5),
            make_arm("group_dropout", rates={"majority": 0.6, "minority": 0.2}),
            make_arm("dp_sgd", epsilon=3.0, delta=1e-5))
    config = AuditConfig(arms=arms, seeds=(0,), n_bootstrap=0, training=TrainingConfig(epochs=4),
                         privacy_audit=PrivacyAuditConfig(mia="none", canaries=100, gradient_canaries=0))
    emp = run_audit("synthetic", config, n_rows=6000).empirical
    rows = emp[emp["audit"] == "white_box_rows"].set_index("arm")
    assert rows.loc["uniform_dropout", "epsilon_lower_bound"] > 3.0
    assert rows.loc["group_dropout", "epsilon_lower_bound"] > 3.0
    assert rows.loc["dp_sgd", "epsilon_lower_bound"] < 1.0
    assert (rows["k_minus"] == 0).all() and (rows["k_plus"] > 0).all()


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_white_box_probe_on_cuda_matches_cpu() -> None:
    """The white-box path on the GPU: same draws (sampled on the CPU), same observations."""
    X, y = _toy()
    probe = WhiteBoxProbe(rows_X=np.random.default_rng(0).standard_normal((20, X.shape[1])) * 1000,
                          gradient=GradientCanaries(np.arange(40) % 2 == 0, 4.0))
    traces = []
    for device in ("cpu", "cuda"):
        stats = BatchStats()
        train_mlp_batch(X.to(device), y.to(device), [_dp_spec(1e-9)],
                        config=TrainingConfig(hidden=(8,), epochs=2, batch_size=60), stats=stats,
                        dp_rows=DPRowCount(10, 640), probe=probe)
        traces.append(stats.traces[0])
    np.testing.assert_allclose(traces[0].gradient_observation, traces[1].gradient_observation, atol=1e-4)
    np.testing.assert_allclose(traces[0].row_matches, traces[1].row_matches, atol=1e-4)


def test_row_canaries_train_apart_from_the_black_box_canaries() -> None:
    """The crafted rows get a canary run of their own: the black-box audit of a non-DP
    arm is exactly the same with the white-box audit on or off (their huge inputs, in the
    same run, took the baseline's black-box bound on Adult from 0.47 to 0)."""
    def black_box(white_box: bool) -> dict:
        config = AuditConfig(arms=(make_arm("baseline"),), seeds=(0,), n_bootstrap=0,
                             training=TrainingConfig(epochs=2),
                             privacy_audit=PrivacyAuditConfig(mia="none", canaries=200, white_box=white_box,
                                                              white_box_canaries=100))
        emp = run_audit("synthetic", config, n_rows=4000).empirical
        assert set(emp["audit"]) == ({"black_box", "white_box_rows"} if white_box else {"black_box"})
        row = emp[emp["audit"] == "black_box"].iloc[0]
        return {k: row[k] for k in ("canaries", "included", "guesses", "correct", "epsilon_lower_bound")}

    assert black_box(True) == black_box(False)
