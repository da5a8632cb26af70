"""The executor seam: every model of an audit goes through one executor, in job order."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytest
import torch
from fit_helpers import RecordingExecutor

from audit import (
    AuditConfig,
    BaselineArm,
    ConfigError,
    DPSGDArm,
    Executor,
    FitJob,
    FittedModel,
    GroupDropoutArm,
    InternalError,
    LocalExecutor,
    PrivacyAuditConfig,
    ProgressEvent,
    ReferenceTrainer,
    TrainingConfig,
    TrainingRows,
    UniformDropoutArm,
    available_executors,
    get_executor,
    load_dataset,
    register_executor,
    run_audit,
)

TINY = TrainingConfig(hidden=(8,), epochs=1, batch_size=128)


@pytest.fixture(scope="module")
def dataset() -> Any:
    return load_dataset("synthetic", n_rows=1500)


def _config(**kw: Any) -> AuditConfig:
    base: dict[str, Any] = dict(
        arms=(BaselineArm(), UniformDropoutArm(p=0.3), GroupDropoutArm(), DPSGDArm()), seeds=2,
        n_bootstrap=0, training=TINY,
        privacy_audit=PrivacyAuditConfig(mia="lira", shadows=2, mia_bootstrap=0, canaries=100,
                                         mechanism_rows=5, mechanism_masks=4))
    base.update(kw)
    return AuditConfig(**base)


_Recording = RecordingExecutor


class _Reversed(LocalExecutor):
    """Returns the right models in the wrong order: the audit must notice."""

    def run(self, jobs: Sequence[FitJob], **kw: Any) -> list[FittedModel]:  # type: ignore[override]
        return super().run(jobs, **kw)[::-1]


def test_every_model_goes_through_the_executor_and_progress_counts_them(dataset: Any) -> None:
    events: list[ProgressEvent] = []
    executor = _Recording()
    result = run_audit(dataset, _config(), executor=executor, progress=events.append)
    purposes = pd.Series([job.purpose for job in executor.seen]).value_counts().to_dict()
    # 4 arms x 2 seeds; 2 shadows per arm; two canary runs per seed (black-box and row
    # canaries) training each arm; the auto group-dropout arm's candidates (uniform + 9
    # on the budget line, and the logistic closed form's choice unless it is one of
    # them) x 4 cross-fitting folds.
    candidates = len(result.solutions["group_dropout"]["curve"])
    assert candidates in (10, 11)
    assert purposes == {"arm": 8, "shadow": 8, "canary": 16, "solver": 4 * candidates}
    # Progress also counts the 13 logistic models the closed form fits (uniform + 12 on
    # the budget line) before the candidates are trained.
    total = 32 + 4 * candidates + 13
    assert events[-1].stage == "done"
    assert events[-1].done == events[-1].total == len(executor.seen) + 13 == total
    # Known from the first event: the most candidates there can be (the closed form's
    # choice among them), less its 4 folds once it turns out to be a grid point.
    assert events[0].total == 32 + 4 * 11 + 13
    assert {e.total for e in events} <= {32 + 4 * 11 + 13, total}
    assert [e.total for e in events] == sorted((e.total for e in events), reverse=True)
    done = [e.done for e in events]
    assert done == sorted(done)  # never goes backwards
    # The shadows are trained once (8 above) and scored by LiRA and RMIA both.
    assert {"lira", "rmia"} <= set(result.roc["attack"])


def test_a_custom_executor_gives_the_same_numbers(dataset: Any) -> None:
    cfg = _config(privacy_audit=PrivacyAuditConfig(mia="loss", mia_bootstrap=0, canaries=100,
                                                   mechanism_rows=0))
    a = run_audit(dataset, cfg)
    b = run_audit(dataset, cfg, executor=_Recording())
    pd.testing.assert_frame_equal(a.by_group, b.by_group, check_exact=True)
    pd.testing.assert_frame_equal(a.empirical, b.empirical, check_exact=True)


def test_models_out_of_order_are_an_internal_error(dataset: Any) -> None:
    cfg = _config(arms=(BaselineArm(), UniformDropoutArm(p=0.3)),
                  privacy_audit=PrivacyAuditConfig(mia="none", canaries=0, mechanism_rows=0))
    with pytest.raises(InternalError, match="out of order"):
        run_audit(dataset, cfg, executor=_Reversed())


def test_executor_registry() -> None:
    assert "local" in available_executors()
    assert isinstance(get_executor("local", trainer="reference").trainer, ReferenceTrainer)
    assert available_executors()[:2] == ("local", "ray")
    with pytest.raises(ConfigError, match=r"unknown executor 'spark'; valid: \['local', 'ray'\]"):
        get_executor("spark")

    class Again(Executor):
        name: ClassVar[str] = "local"

        def run(self, jobs: Sequence[FitJob], **kw: Any) -> list[FittedModel]:  # type: ignore[override]
            return []

    with pytest.raises(ConfigError, match="executor 'local' is already registered"):
        register_executor(Again)


def test_rows_that_fix_the_mechanism_are_refused_by_a_trainer_that_cannot() -> None:
    X = np.random.default_rng(0).normal(size=(50, 3)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.float32)
    rows = TrainingRows(X, y, name="canary run, seed 0", accounting_rows=60)
    job = FitJob(arm=DPSGDArm(), data=rows, rates=np.zeros(50, np.float32), seed=0, epsilon=3.0,
                 delta=1e-3)
    with pytest.raises(ConfigError, match="fixes the DP mechanism by 60 rows.*'reference' trainer"):
        ReferenceTrainer().fit(job, config=TINY, device=torch.device("cpu"))
    # The local executor sends such rows to a trainer that can, whatever its own trainer.
    model = LocalExecutor("reference").run([job], config=TINY, device=torch.device("cpu"))[0]
    assert model.job is job
    # 50 rows, batch 128: one step per epoch, q = 1, fixed by the 60 accounted rows.
    assert model.ledger.sample_rate == 1.0 and model.ledger.steps == 1
