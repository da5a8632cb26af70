"""The batched trainer against Opacus and plain torch, plus its DP mechanics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from audit import (
    MLP,
    AuditConfig,
    BaselineArm,
    DPSGDArm,
    GroupDropoutArm,
    TrainingConfig,
    UniformDropoutArm,
    load_dataset,
    run_audit,
)
from audit._batched import (
    BatchedModelSpec,
    BatchedTrainer,
    BatchStats,
    _clipped_sum,
    _dropout_masks,
    _Generators,
    _mean_grad,
    _noisy_mean,
    _RowLoss,
    _StackedOptimizer,
    train_mlp_batch,
)
from audit._privacy import quiet_opacus

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


bce = _RowLoss("classification")


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
    gens = [_Generators(s, torch.device("cpu")) for s in (0, 1)]
    rates = torch.zeros(2, X.shape[0], dtype=torch.float64)
    summed = _clipped_sum(mode, base, params, X, y, rates, idx, valid, gens,
                          torch.tensor([clip, clip], dtype=torch.float64), bce)
    grads = {k: v / expected for k, v in summed.items()}
    opt = _StackedOptimizer(params, torch.tensor([lr, lr], dtype=torch.float64), "sgd")
    opt.step(grads)

    clipped_any = False
    for k, (model, r) in enumerate(zip(refs, rows, strict=True)):
        gsm = GradSampleModule(model, loss_reduction="mean")
        optimizer = DPOptimizer(torch.optim.SGD(gsm.parameters(), lr=lr, momentum=0.9),
                                noise_multiplier=0.0, max_grad_norm=clip, expected_batch_size=expected)
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
    gens = [_Generators(s, torch.device("cpu")) for s in range(3)]
    rates = torch.zeros(3, 40, dtype=torch.float64)
    clip = torch.tensor([0.5, 1.0, 100.0], dtype=torch.float64)
    a = _clipped_sum("ghost", base, params, X, y, rates, idx, valid, gens, clip, bce)
    b = _clipped_sum("vmap", base, params, X, y, rates, idx, valid, gens, clip, bce)
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-10, atol=1e-12)


def test_non_private_step_matches_plain_torch_adam() -> None:
    X, y = data(n=50, seed=7)
    refs = models([10, 11])
    params = stacked(refs)
    base = models([10])[0]
    gens = [_Generators(s, torch.device("cpu")) for s in (10, 11)]
    rates = torch.zeros(2, 50, dtype=torch.float64)
    opt = _StackedOptimizer(params, torch.tensor([0.01, 0.02], dtype=torch.float64), "adam")
    batches = [torch.arange(0, 20), torch.arange(10, 30)]
    ref_opts = [torch.optim.Adam(m.parameters(), lr=lr) for m, lr in zip(refs, (0.01, 0.02), strict=True)]
    for step in range(3):  # several steps exercise Adam's bias correction and moments
        idx = torch.stack([(b + step) % 50 for b in batches])
        grads = _mean_grad(base, params, X, y, rates, idx, torch.ones(2, 20, dtype=torch.float64),
                           gens, bce, "ghost", denominator=20)
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
    gens = [_Generators(s, torch.device("cpu")) for s in (0, 1)]
    rows = 2000
    group = torch.arange(rows) % 2  # alternate rows between groups with rates 0.2 and 0.6
    rate = torch.where(group == 0, 0.2, 0.6).double()
    keep = torch.stack([1 - rate, 1 - rate])
    (mult,) = _dropout_masks(gens, keep, [50])
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
    gens = [_Generators(s, torch.device("cpu")) for s in (0, 1)]
    summed = {"w": torch.zeros(2, 200, 100, dtype=torch.float64)}
    sigma = torch.tensor([0.5, 2.0], dtype=torch.float64)
    clip = torch.tensor([1.0, 3.0], dtype=torch.float64)
    expected = torch.tensor([10.0, 20.0], dtype=torch.float64)
    out = _noisy_mean(summed, gens, sigma, clip, expected)["w"]
    for k in range(2):
        noise = out[k] * expected[k]
        target = float(sigma[k] * clip[k])
        # 20k draws: the sample std's relative sd is 1/sqrt(2*20000) = 0.5%; allow 3%.
        assert noise.std().item() == pytest.approx(target, rel=0.03)
        assert abs(noise.mean().item()) < 5 * target / math.sqrt(20000)


def _dp_specs(n: int, q: float, seeds=(0, 1)) -> list[BatchedModelSpec]:
    return [BatchedModelSpec(seed=s, rates=np.zeros(n, dtype=np.float32), lr=0.01, max_grad_norm=1.0,
                             noise_multiplier=1.0, sample_rate=q) for s in seeds]


def test_oversized_draws_are_chunked_not_truncated() -> None:
    X, y = data(n=120, seed=2)
    specs = _dp_specs(120, 0.25)
    small, wide = BatchStats(), BatchStats()
    a = train_mlp_batch(X, y, specs, hidden=HIDDEN, epochs=2, batch_size=30, padded_batch=4, stats=small)
    b = train_mlp_batch(X, y, specs, hidden=HIDDEN, epochs=2, batch_size=30, padded_batch=200, stats=wide)
    assert small.chunks > wide.chunks  # draws of ~30 rows went through in chunks of 4
    assert small.max_draw > 4
    for sa, sb in zip(a, b, strict=True):
        for key in sa:
            torch.testing.assert_close(sa[key], sb[key], rtol=1e-9, atol=1e-12)


def test_empty_poisson_draws_take_a_noise_only_step() -> None:
    X, y = data(n=5, seed=1)
    stats = BatchStats()
    states = train_mlp_batch(X, y, _dp_specs(5, 0.2), hidden=HIDDEN, epochs=6, batch_size=1, stats=stats)
    assert stats.min_draw == 0  # P(empty draw) = 0.8^5 = 0.33 per step, 30 steps
    assert stats.steps == 30  # no step skipped: the accountant counts every one
    assert all(torch.isfinite(v).all() for s in states for v in s.values())


def test_same_seed_same_model_regardless_of_batch_company() -> None:
    X, y = data(n=80, seed=5)
    spec = _dp_specs(80, 0.2, seeds=(3,))
    alone = train_mlp_batch(X, y, spec, hidden=HIDDEN, epochs=1, batch_size=16)[0]
    together = train_mlp_batch(X, y, _dp_specs(80, 0.2, seeds=(9, 3)), hidden=HIDDEN, epochs=1,
                               batch_size=16)[1]
    for key in alone:
        torch.testing.assert_close(alone[key], together[key], rtol=1e-9, atol=1e-12)


def test_mixed_batch_refused() -> None:
    X, y = data(n=10)
    specs = [*_dp_specs(10, 0.5, seeds=(0,)), BatchedModelSpec(seed=1, rates=np.zeros(10), lr=0.1)]
    from audit import ConfigError

    with pytest.raises(ConfigError, match="all private or all non-private"):
        train_mlp_batch(X, y, specs, hidden=HIDDEN, epochs=1, batch_size=5)


def test_batched_and_reference_audits_agree() -> None:
    ds = load_dataset("synthetic", n_rows=4000)
    arms = (BaselineArm(), UniformDropoutArm(p=0.5),
            GroupDropoutArm(rates={"majority": 0.6, "minority": 0.1}), DPSGDArm())
    cfg = dict(arms=arms, seeds=3, n_bootstrap=0, training=TrainingConfig(epochs=5, hidden=(32,)))
    ref = run_audit(ds, AuditConfig(trainer="reference", **cfg))
    bat = run_audit(ds, AuditConfig(trainer="batched", **cfg))
    assert bat.meta["trainer"] == "batched" and ref.meta["trainer"] == "reference"
    p_ref, p_bat = ref.aggregate("privacy"), bat.aggregate("privacy")
    assert p_bat.loc[p_bat["arm"] == "dp_sgd", "epsilon"].iloc[0] == pytest.approx(
        p_ref.loc[p_ref["arm"] == "dp_sgd", "epsilon"].iloc[0], rel=1e-9)
    for col in ("noise_multiplier", "sample_rate", "steps"):
        assert p_bat[col].equals(p_ref[col])
    e_ref, e_bat = ref.aggregate("by_group"), bat.aggregate("by_group")
    def error(df, arm: str, group: str):
        return df[(df["arm"] == arm) & (df["group"] == group) & (df["metric"] == "error_rate")].iloc[0]

    for arm in ref.arm_names:
        for group in ("majority", "minority"):
            r, b = error(e_ref, arm, group), error(e_bat, arm, group)
            # Test rows: ~640 majority, ~160 minority. Two independently trained 3-seed
            # means differ by far less than the binomial sd of one error rate
            # (sqrt(.1*.9/160) = 0.024 for the minority); 0.05 is ~2 such sds.
            tol = 0.05 if group == "minority" else 0.025
            assert abs(r["value"] - b["value"]) < tol, (arm, group, r["value"], b["value"])


def test_trainer_fit_single_job_and_stats() -> None:
    ds = load_dataset("synthetic", n_rows=600)
    from audit import TabularPreprocessor, split_dataset

    sp = split_dataset(ds)
    pre = TabularPreprocessor().fit(ds.features.iloc[sp.train])
    X = pre.transform(ds.features.iloc[sp.train])
    trainer = BatchedTrainer()
    arm = DPSGDArm()
    fitted = trainer.fit(arm=arm, X=X, y=ds.y[sp.train], rates=np.zeros(X.shape[0], np.float32),
                         seed=0, config=TrainingConfig(epochs=2), device=torch.device("cpu"),
                         epsilon=2.0, delta=1e-5)
    assert 0 < fitted.ledger.epsilon <= 2.0
    probs = fitted.predict(pre.transform(ds.features.iloc[sp.test]))
    assert probs.shape == (sp.test.shape[0],) and np.all((probs >= 0) & (probs <= 1))
    assert trainer.last_stats[0].steps == 2 * math.ceil(X.shape[0] / 256)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_batched_on_cuda_matches_cpu_mechanics() -> None:
    X, y = data(n=64)
    specs = [BatchedModelSpec(seed=s, rates=np.zeros(64), lr=0.01) for s in (0, 1)]
    cpu = train_mlp_batch(X, y, specs, hidden=HIDDEN, epochs=2, batch_size=16)
    gpu = train_mlp_batch(X.cuda(), y.cuda(), specs, hidden=HIDDEN, epochs=2, batch_size=16)
    for a, b in zip(cpu, gpu, strict=True):
        for key in a:
            torch.testing.assert_close(a[key], b[key].cpu(), rtol=1e-6, atol=1e-8)


def test_bench_command_prints_json(tmp_path) -> None:
    import json

    from click.testing import CliRunner

    from audit.cli import main

    res = CliRunner().invoke(main, ["bench", "--models", "2", "--hidden", "16", "--rows", "1500",
                                    "--data", str(tmp_path / "absent.data"), "--json"],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output
    out = json.loads(res.output.strip().splitlines()[-1])
    for key in ("device", "models", "reference_s", "batched_s", "ratio", "nonprivate_ratio",
                "peak_memory_mb"):
        assert key in out
    assert out["models"] == 2 and out["device"] == "cpu" and out["rows"] == 1500
    assert out["ratio"] == pytest.approx(out["reference_s"] / out["batched_s"])
    assert "synthetic" in out["dataset"]
