"""The batched trainer against Opacus and plain torch, plus its DP mechanics."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from fit_helpers import fit_one
from torch import nn

from audit import (
    MLP,
    AuditConfig,
    BaselineArm,
    BatchedModelSpec,
    BatchedTrainer,
    BatchEngine,
    BatchStats,
    DPSGDArm,
    GroupDropoutArm,
    TrainingConfig,
    UniformDropoutArm,
    load_dataset,
    run_audit,
    train_mlp_batch,
)
from audit.dp._accounting import quiet_opacus
from audit.training._stacked_mlp import (
    RowChunk,
    RowLoss,
    StackedModels,
    StackedOptimizer,
    StreamGenerators,
    clipped_sum,
    dropout_masks,
    mean_grad,
    noisy_mean,
)

D, HIDDEN = 6, (5, 4)


def data(n: int = 64, seed: int = 0, dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, D, generator=g, dtype=dtype) * 3  # large inputs: many rows get clipped
    y = (torch.rand(n, generator=g, dtype=dtype) < 0.5).to(dtype)
    return X, y


def models(seeds: list[int], dtype: torch.dtype = torch.float64) -> list[MLP]:
    out = []
    for s in seeds:
        torch.manual_seed(s)
        out.append(MLP(D, hidden=HIDDEN).to(dtype))
    return out


def stacked(ms: list[nn.Module]) -> dict[str, torch.Tensor]:
    names = [n for n, _ in ms[0].named_parameters()]
    return {n: torch.stack([dict(m.named_parameters())[n].detach().clone() for m in ms]) for n in names}


bce = RowLoss("classification")


@pytest.mark.parametrize("mode", ["ghost", "vmap"])
def test_one_dp_step_matches_opacus(mode: str) -> None:
    """Noise off, same sampled rows: the batched update equals GradSampleModule + DPOptimizer."""
    from opacus import GradSampleModule
    from opacus.optimizers import DPOptimizer

    X, y = data()
    rows = [torch.tensor([0, 3, 5, 8, 13, 21, 34, 40, 41, 55]), torch.tensor([1, 2, 4, 60])]
    clip, expected, lr = 1.0, 12, 0.05
    refs = models([0, 1])
    params = stacked(refs)
    width = max(len(r) for r in rows)
    idx = torch.stack([torch.cat([r, r.new_zeros(width - len(r))]) for r in rows])
    valid = torch.stack([(torch.arange(width) < len(r)).double() for r in rows])
    base = models([0])[0]
    summed = clipped_sum(
        StackedModels(base, params, mode, bce),
        RowChunk(X[idx], y[idx], valid),
        torch.tensor([clip, clip], dtype=torch.float64),
    )
    grads = {k: v / expected for k, v in summed.items()}
    opt = StackedOptimizer(params, torch.tensor([lr, lr], dtype=torch.float64), "sgd")
    opt.step(grads)

    clipped_any = False
    for k, (model, r) in enumerate(zip(refs, rows, strict=True)):
        gsm = GradSampleModule(model, loss_reduction="mean")
        optimizer = DPOptimizer(
            torch.optim.SGD(gsm.parameters(), lr=lr, momentum=0.9),
            noise_multiplier=0.0,
            max_grad_norm=clip,
            expected_batch_size=expected,
        )
        optimizer.zero_grad()
        with quiet_opacus():
            loss = nn.functional.binary_cross_entropy_with_logits(gsm(X[r]), y[r])
            loss.backward()
        norms = torch.stack([p.grad_sample.flatten(1).norm(dim=1) for p in gsm.parameters()]).norm(dim=0)
        clipped_any |= bool((norms > clip).any())
        optimizer.step()
        for name, p in model.named_parameters():
            ours = params[name][k]
            rel = (ours - p.detach()).norm() / p.detach().norm()
            assert rel < 1e-5, (name, float(rel))
    assert clipped_any  # the comparison exercised clipping, not only the identity


def test_ghost_and_vmap_clipped_sums_agree() -> None:
    X, y = data(n=40, seed=3)
    params = stacked(models([4, 5, 6]))
    idx = torch.stack([torch.randperm(40, generator=torch.Generator().manual_seed(k))[:17] for k in range(3)])
    valid = torch.ones(3, 17, dtype=torch.float64)
    valid[1, 12:] = 0
    base = models([4])[0]
    clip = torch.tensor([0.5, 1.0, 100.0], dtype=torch.float64)
    chunk = RowChunk(X[idx], y[idx], valid)
    a = clipped_sum(StackedModels(base, params, "ghost", bce), chunk, clip)
    b = clipped_sum(StackedModels(base, params, "vmap", bce), chunk, clip)
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-10, atol=1e-12)


def test_non_private_step_matches_plain_torch_adam() -> None:
    X, y = data(n=50, seed=7)
    refs = models([10, 11])
    params = stacked(refs)
    base = models([10])[0]
    opt = StackedOptimizer(params, torch.tensor([0.01, 0.02], dtype=torch.float64), "adam")
    batches = [torch.arange(0, 20), torch.arange(10, 30)]
    ref_opts = [torch.optim.Adam(m.parameters(), lr=lr) for m, lr in zip(refs, (0.01, 0.02), strict=True)]
    for step in range(3):  # several steps exercise Adam's bias correction and moments
        idx = torch.stack([(b + step) % 50 for b in batches])
        grads = mean_grad(
            StackedModels(base, params, "ghost", bce),
            RowChunk(X[idx], y[idx], torch.ones(2, 20, dtype=torch.float64)),
            denominator=20,
        )
        opt.step(grads)
        for model, o, i in zip(refs, ref_opts, idx, strict=True):
            o.zero_grad()
            nn.functional.binary_cross_entropy_with_logits(model(X[i]), y[i]).backward()
            o.step()
    for k, model in enumerate(refs):
        for name, p in model.named_parameters():
            rel = (params[name][k] - p.detach()).norm() / p.detach().norm()
            assert rel < 1e-5, (name, float(rel))


def test_dropout_masks_follow_each_rows_group_rate() -> None:
    gens = [StreamGenerators(s, "arm", torch.device("cpu")) for s in (0, 1)]
    rows = 2000
    group = torch.arange(rows) % 2  # alternate rows between groups with rates 0.2 and 0.6
    rate = torch.where(group == 0, 0.2, 0.6).double()
    keep = torch.stack([1 - rate, 1 - rate])
    (mult,) = dropout_masks(gens, keep, [rows, rows], [50])
    kept = mult > 0
    # survivors are scaled by 1 / keep (inverted dropout)
    torch.testing.assert_close(mult[kept], (1 / keep[..., None].expand_as(mult))[kept])
    for g, p in ((0, 0.2), (1, 0.6)):
        frac = kept[:, group == g].double().mean().item()
        n_units = 2 * (rows // 2) * 50
        sd = math.sqrt(p * (1 - p) / n_units)
        # 100k Bernoulli draws per group: 5 standard deviations is ~0.007 at most.
        assert abs(frac - (1 - p)) < 5 * sd
    assert not torch.equal(mult[0], mult[1])  # each model draws its own masks


def test_noise_has_std_sigma_times_clip() -> None:
    gens = [StreamGenerators(s, "arm", torch.device("cpu")) for s in (0, 1)]
    summed = {"w": torch.zeros(2, 200, 100, dtype=torch.float64)}
    sigma = torch.tensor([0.5, 2.0], dtype=torch.float64)
    clip = torch.tensor([1.0, 3.0], dtype=torch.float64)
    expected = torch.tensor([10.0, 20.0], dtype=torch.float64)
    out = noisy_mean(summed, gens, sigma, clip, expected)["w"]
    for k in range(2):
        noise = out[k] * expected[k]
        target = float(sigma[k] * clip[k])
        # 20k draws: the sample std's relative sd is 1/sqrt(2*20000) = 0.5%; allow 3%.
        assert noise.std().item() == pytest.approx(target, rel=0.03)
        assert abs(noise.mean().item()) < 5 * target / math.sqrt(20000)


def _dp_specs(n: int, q: float, seeds=(0, 1)) -> list[BatchedModelSpec]:
    return [
        BatchedModelSpec(
            seed=s,
            rates=np.zeros(n, dtype=np.float32),
            lr=0.01,
            max_grad_norm=1.0,
            noise_multiplier=1.0,
            sample_rate=q,
        )
        for s in seeds
    ]


def test_oversized_draws_are_chunked_not_truncated() -> None:
    X, y = data(n=120, seed=2)
    specs = _dp_specs(120, 0.25)
    small, wide = BatchStats(), BatchStats()
    a = train_mlp_batch(
        X,
        y,
        specs,
        config=TrainingConfig(hidden=HIDDEN, epochs=2, batch_size=30),
        engine=BatchEngine(padded_batch=4),
        stats=small,
    )
    b = train_mlp_batch(
        X,
        y,
        specs,
        config=TrainingConfig(hidden=HIDDEN, epochs=2, batch_size=30),
        engine=BatchEngine(padded_batch=200),
        stats=wide,
    )
    assert small.chunks > wide.chunks  # draws of ~30 rows went through in chunks of 4
    assert small.max_draw > 4
    for sa, sb in zip(a, b, strict=True):
        for key in sa:
            torch.testing.assert_close(sa[key], sb[key], rtol=1e-9, atol=1e-12)


def test_empty_poisson_draws_take_a_noise_only_step() -> None:
    X, y = data(n=5, seed=1)
    stats = BatchStats()
    states = train_mlp_batch(
        X, y, _dp_specs(5, 0.2), config=TrainingConfig(hidden=HIDDEN, epochs=6, batch_size=1), stats=stats
    )
    assert stats.min_draw == 0  # P(empty draw) = 0.8^5 = 0.33 per step, 30 steps
    assert stats.steps == 30  # no step skipped: the accountant counts every one
    assert all(torch.isfinite(v).all() for s in states for v in s.values())


@pytest.mark.parametrize("private", [True, False])
def test_same_seed_same_model_regardless_of_batch_company(private: bool) -> None:
    """With dropout, a model's result depends on its seed only: not on the other models in
    the batch, the padded width or the memory-driven chunking."""
    X, y = data(n=80, seed=5)
    rates = np.where(np.arange(80) % 3 == 0, 0.6, 0.2)

    def spec(seed: int) -> BatchedModelSpec:
        extra = dict(max_grad_norm=1.0, noise_multiplier=1.0, sample_rate=0.2) if private else {}
        return BatchedModelSpec(seed=seed, rates=rates, lr=0.01, stream="arm", **extra)

    alone = train_mlp_batch(X, y, [spec(3)], config=TrainingConfig(hidden=HIDDEN, epochs=1, batch_size=16))[0]
    together = train_mlp_batch(
        X,
        y,
        [spec(9), spec(3)],
        config=TrainingConfig(hidden=HIDDEN, epochs=1, batch_size=16),
        engine=BatchEngine(padded_batch=5, memory_budget_mb=1e-3),
    )[1]
    for key in alone:
        torch.testing.assert_close(alone[key], together[key], rtol=1e-9, atol=1e-12)


def test_two_arms_with_one_seed_draw_independent_batches_and_noise() -> None:
    a, b = (
        StreamGenerators(0, "dp eps=1", torch.device("cpu")),
        StreamGenerators(0, "dp eps=8", torch.device("cpu")),
    )
    assert not torch.equal(a.poisson(1000, 0.5), b.poisson(1000, 0.5))
    assert not torch.equal(
        a.normal(torch.Size([100]), torch.float64, torch.device("cpu")),
        b.normal(torch.Size([100]), torch.float64, torch.device("cpu")),
    )
    # and no stream coincides with the next seed's initialisation stream
    torch.manual_seed(1)
    init_next = torch.rand(50)
    c = StreamGenerators(0, "dp", torch.device("cpu"))
    assert not torch.equal(torch.rand(50, generator=c.sampling), init_next)


def test_full_dp_step_matches_opacus_on_the_same_poisson_draw() -> None:
    """End to end through train_mlp_batch (one step, noise 0): sampling, clipping and the
    division by Opacus' expected batch size int(n q), not by the draw's size."""
    from opacus import GradSampleModule
    from opacus.optimizers import DPOptimizer

    n, q, lr, clip = 64, 0.25, 0.05, 0.5
    X, y = data(n=n, seed=11)
    spec = BatchedModelSpec(
        seed=7, rates=np.zeros(n), lr=lr, stream="dp", max_grad_norm=clip, noise_multiplier=0.0, sample_rate=q
    )
    stats = BatchStats()
    state = train_mlp_batch(
        X,
        y,
        [spec],
        config=TrainingConfig(hidden=HIDDEN, epochs=1, batch_size=n, optimizer="sgd"),
        stats=stats,
    )[0]
    assert stats.steps == 1
    rows = torch.nonzero(StreamGenerators(7, "dp", torch.device("cpu")).poisson(n, q)).flatten()
    assert stats.draw_sizes == [len(rows)] and len(rows) != int(n * q)
    (model,) = models([7])
    gsm = GradSampleModule(model, loss_reduction="mean")
    opt = DPOptimizer(
        torch.optim.SGD(gsm.parameters(), lr=lr, momentum=0.9),
        noise_multiplier=0.0,
        max_grad_norm=clip,
        expected_batch_size=int(n * q),
    )
    with quiet_opacus():
        nn.functional.binary_cross_entropy_with_logits(gsm(X[rows]), y[rows]).backward()
    opt.step()
    for name, p in model.named_parameters():
        torch.testing.assert_close(state[name], p.detach(), rtol=1e-5, atol=1e-9)


def test_noise_end_to_end_has_the_calibrated_scale() -> None:
    """X = 0 and a linear model: every weight update is pure DP noise, sigma C / int(q n)."""
    n, d, lr, sigma, clip = 200, 100, 0.1, 1.3, 0.7
    X, y = torch.zeros(n, d, dtype=torch.float64), torch.ones(n, dtype=torch.float64)
    specs = [
        BatchedModelSpec(
            seed=s,
            rates=np.zeros(n),
            lr=lr,
            stream="dp",
            max_grad_norm=clip,
            noise_multiplier=sigma,
            sample_rate=0.25,
        )
        for s in range(16)
    ]
    before = train_mlp_batch(
        X, y, specs, config=TrainingConfig(hidden=(), epochs=1, batch_size=n, optimizer="sgd")
    )
    # batch_size=n: one step per epoch (q=1 in the spec is ignored: sample_rate rules).
    deltas = []
    for s, spec in enumerate(specs):
        torch.manual_seed(spec.seed)
        init = MLP(d, hidden=()).double().output.weight.detach()
        deltas.append((before[s]["output.weight"] - init).flatten())
    change = torch.cat(deltas)
    expected_std = lr * sigma * clip / int(n * 0.25)
    # 1600 weights, each lr * N(0, (sigma C)^2) / int(n q): the sample std's relative sd is
    # 1/sqrt(2*1600) = 1.8%; 8% is > 4 sd. No noise gives 0; dividing by the draw size
    # (about 50 +- 6) instead of int(nq) = 50 would not change the scale much, which the
    # Opacus end-to-end test above catches instead.
    assert change.std().item() == pytest.approx(expected_std, rel=0.08)
    assert abs(change.mean().item()) < 5 * expected_std / math.sqrt(change.numel())


def test_poisson_draw_sizes_are_binomial() -> None:
    X, y = data(n=400, seed=4)
    stats = BatchStats()
    train_mlp_batch(
        X,
        y,
        _dp_specs(400, 0.1, seeds=tuple(range(8))),
        config=TrainingConfig(hidden=(3,), epochs=4, batch_size=40),
        stats=stats,
    )
    sizes = np.array(stats.draw_sizes)
    assert sizes.shape == (8 * 40,)  # 8 models x 10 steps x 4 epochs
    # Binomial(400, 0.1): mean 40, variance 36. 320 draws: the mean's sd is 0.34 and the
    # sample variance's sd is about 36 * sqrt(2/320) = 2.8; tolerances are ~4 sd.
    assert sizes.mean() == pytest.approx(40, abs=1.4)
    assert sizes.var(ddof=1) == pytest.approx(36, abs=11)


def test_vmap_path_refuses_dropout() -> None:
    X, y = data(n=20)
    spec = BatchedModelSpec(seed=0, rates=np.full(20, 0.3), lr=0.1)
    from audit import ConfigError

    with pytest.raises(ConfigError, match="vmap' does not support dropout"):
        train_mlp_batch(
            X,
            y,
            [spec],
            config=TrainingConfig(hidden=HIDDEN, epochs=1, batch_size=5),
            engine=BatchEngine(per_sample="vmap"),
        )


def test_mixed_batch_refused() -> None:
    X, y = data(n=10)
    specs = [*_dp_specs(10, 0.5, seeds=(0,)), BatchedModelSpec(seed=1, rates=np.zeros(10), lr=0.1)]
    from audit import ConfigError

    with pytest.raises(ConfigError, match="all private or all non-private"):
        train_mlp_batch(X, y, specs, config=TrainingConfig(hidden=HIDDEN, epochs=1, batch_size=5))


def test_batched_and_reference_audits_agree() -> None:
    ds = load_dataset("synthetic", n_rows=4000)
    arms = (
        BaselineArm(),
        UniformDropoutArm(p=0.5),
        GroupDropoutArm(rates={"majority": 0.6, "minority": 0.1}),
        DPSGDArm(),
    )
    cfg = dict(arms=arms, seeds=3, n_bootstrap=0, training=TrainingConfig(epochs=5, hidden=(32,)))
    ref = run_audit(ds, AuditConfig(trainer="reference", **cfg))
    bat = run_audit(ds, AuditConfig(trainer="batched", **cfg))
    assert bat.meta["trainer"] == "batched" and ref.meta["trainer"] == "reference"
    p_ref, p_bat = ref.aggregate("privacy"), bat.aggregate("privacy")
    assert p_bat.loc[p_bat["arm"] == "dp_sgd", "epsilon"].iloc[0] == pytest.approx(
        p_ref.loc[p_ref["arm"] == "dp_sgd", "epsilon"].iloc[0], rel=1e-9
    )
    for col in ("noise_multiplier", "sample_rate", "steps"):
        assert p_bat[col].equals(p_ref[col])

    def error(df, arm: str, group: str) -> pd.Series:
        return df[(df["arm"] == arm) & (df["group"] == group) & (df["metric"] == "error_rate")]

    for arm in ref.arm_names:
        for group in ("majority", "minority"):
            r = error(ref.by_group, arm, group)
            b = error(bat.by_group, arm, group)
            r_seeds, b_seeds = r[r["seed"].notna()]["value"], b[b["seed"].notna()]["value"]
            # Same training and test rows: the two 3-seed means differ only through
            # training randomness, whose seed-to-seed spread each run measures. Allow 4
            # standard errors of the difference of the means, plus 0.005 for the case
            # where 3 seeds happen to agree closely.
            se = math.sqrt(r_seeds.var(ddof=1) / 3 + b_seeds.var(ddof=1) / 3)
            diff = abs(r_seeds.mean() - b_seeds.mean())
            assert diff < 4 * se + 0.005, (arm, group, r_seeds.tolist(), b_seeds.tolist())


def test_trainer_fit_single_job_and_stats() -> None:
    ds = load_dataset("synthetic", n_rows=600)
    from audit import TabularPreprocessor, split_dataset

    sp = split_dataset(ds)
    pre = TabularPreprocessor().fit(ds.features.iloc[sp.train])
    X = pre.transform(ds.features.iloc[sp.train])
    trainer = BatchedTrainer()
    arm = DPSGDArm()
    fitted = fit_one(
        trainer,
        arm=arm,
        X=X,
        y=ds.y[sp.train],
        rates=np.zeros(X.shape[0], np.float32),
        seed=0,
        config=TrainingConfig(epochs=2),
        device=torch.device("cpu"),
        epsilon=2.0,
        delta=1e-5,
    )
    assert 0 < fitted.ledger.epsilon <= 2.0
    probs = fitted.predict(pre.transform(ds.features.iloc[sp.test]))
    assert probs.shape == (sp.test.shape[0],) and np.all((probs >= 0) & (probs <= 1))
    assert trainer.last_stats[0].steps == 2 * math.ceil(X.shape[0] / 256)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_batched_on_cuda_matches_cpu_mechanics() -> None:
    X, y = data(n=64)
    specs = [BatchedModelSpec(seed=s, rates=np.zeros(64), lr=0.01) for s in (0, 1)]
    cpu = train_mlp_batch(X, y, specs, config=TrainingConfig(hidden=HIDDEN, epochs=2, batch_size=16))
    gpu = train_mlp_batch(
        X.cuda(), y.cuda(), specs, config=TrainingConfig(hidden=HIDDEN, epochs=2, batch_size=16)
    )
    for a, b in zip(cpu, gpu, strict=True):
        for key in a:
            torch.testing.assert_close(a[key], b[key].cpu(), rtol=1e-6, atol=1e-8)


def test_bench_command_prints_json(tmp_path) -> None:
    import json

    from click.testing import CliRunner
    from fairpriv_cli.main import main

    res = CliRunner().invoke(
        main,
        [
            "bench",
            "--models",
            "2",
            "--hidden",
            "16",
            "--rows",
            "1500",
            "--data",
            str(tmp_path / "absent.data"),
            "--json",
        ],
        catch_exceptions=False,
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.output.strip().splitlines()[-1])
    for key in (
        "device",
        "models",
        "reference_s",
        "batched_s",
        "ratio",
        "nonprivate_ratio",
        "peak_memory_mb",
    ):
        assert key in out
    assert out["models"] == 2 and out["device"] == "cpu" and out["rows"] == 1500
    assert out["ratio"] == pytest.approx(out["reference_s"] / out["batched_s"])
    assert "synthetic" in out["dataset"]
