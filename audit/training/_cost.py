"""How much training a model costs, estimated before it runs, so that progress can count
work in a unit that predicts time rather than in whole models.

The unit is one *row pass*: one training row through one model, forward and backward.
A step of ``K`` models trained together on ``B`` rows each costs about
``STEP_OVERHEAD + K * B`` row passes (the overhead is what a step costs besides its rows:
Python, kernel launches, the optimiser); a DP-SGD row costs ``DP_ROW_COST`` (per-row
norms and clipping), a DPSGD-F row ``DPSGDF_ROW_COST`` (a first pass for the norms its
per-group counts need, then DP-SGD's), a white-box row canary observed at every step ``PROBE_ROW_COST``
and a Dirac gradient canary ``GRADIENT_CANARY_COST``. A model trained alone (``K = 1``)
pays the whole overhead of its steps, which is why 64 shadow models trained one by one
cost more than 64 arms trained together.

A DP-SGD model also needs its noise calibrated to its budget (a binary search over the
PRV accountant, then its epsilon): about ``CALIBRATION_S`` seconds the first time a
mechanism (budget, sampling rate, steps) is asked for, nothing after (it is cached), so
it is counted once per mechanism of the jobs being estimated together, as set-up
seconds apart from the row passes (:class:`JobWork`): it runs on the CPU whatever the
training device.

The constants were measured on a CPU with the built-in MLP (64 hidden units; min of
three runs: a step of K stacked models on 256 rows took about 0.6 ms + K x 0.37 ms,
1.5 times that per row for DP-SGD; a PRV calibration about 2.5 s). Only their ratios
matter: progress scales the estimate by the time training actually takes
(:mod:`audit.pipeline._progress`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..arms._arms import DPSGDFArm
from ._config import TrainingConfig

if TYPE_CHECKING:
    from ._trainer import FitJob

__all__ = ["SECONDS_PER_ROW_PASS", "STACKED_BATCHES", "JobWork", "Mechanisms", "job_costs", "stacked_batch"]

#: What a step costs besides its rows, in row passes.
STEP_OVERHEAD = 400.0
#: A DP-SGD row (per-row gradient norms, clipping), in row passes.
DP_ROW_COST = 1.5
#: A DPSGD-F row: a forward and backward pass for its gradient norm, then a DP-SGD row.
DPSGDF_ROW_COST = 2 * DP_ROW_COST
#: A crafted row canary observed at every step of a white-box run (two batched products
#: with the first layer), in row passes per model.
PROBE_ROW_COST = 0.7
#: A Dirac gradient canary of a DP run (sampled, clipped, noised), in row passes per model.
GRADIENT_CANARY_COST = 0.02
#: A prior for the time of one row pass (CPU, 64 hidden units), until training is timed.
SECONDS_PER_ROW_PASS = 1.5e-6
#: Calibrating the noise of one DP-SGD mechanism and computing its epsilon, in seconds,
#: by accountant (slower at large sampling rates: 1.5-6 s with PRV, 0.3-2.5 s with RDP).
CALIBRATION_S = {"prv": 2.5, "rdp": 1.0, "gdp": 0.2}

#: DP mechanisms already counted (their calibration is paid once), shared by the calls
#: that estimate one audit's jobs.
Mechanisms = set[tuple[Any, ...]]


@dataclass(frozen=True)
class JobWork:
    """What training one job is estimated to cost: ``row_passes`` of training steps, and
    ``setup_s`` seconds of set-up before its steps (calibrating DP noise), which do not
    scale with the training device."""

    row_passes: float
    setup_s: float = 0.0


#: The batches a stacked trainer trains one call's jobs in, in order: non-private, DP-SGD,
#: DPSGD-F (so that only DPSGD-F models pay its two passes).
STACKED_BATCHES = ("plain", "dp_sgd", "dp_sgd_f")


def stacked_batch(job: FitJob) -> str:
    """Which of :data:`STACKED_BATCHES` a stacked trainer trains a job in."""
    if not job.arm.private:
        return "plain"
    return "dp_sgd_f" if isinstance(job.arm, DPSGDFArm) else "dp_sgd"


def _batch_cost(jobs: Sequence[FitJob], config: TrainingConfig, *, private: bool, stacked: bool,
                mechanisms: Mechanisms) -> tuple[float, float]:
    """Row passes and set-up seconds of training ``jobs`` (all of one batch kind) on
    their shared rows, as one stacked batch (``stacked``) or one model after the other."""
    data = jobs[0].data
    n = data.n
    group_adaptive = stacked_batch(jobs[0]) == "dp_sgd_f"
    if private:
        # The mechanism (steps, expected batch) is fixed by the accounting rows when set.
        rows = data.accounting_rows or n
        steps_per_epoch = math.ceil(rows / min(config.batch_size, rows))
        rows_per_step = n / steps_per_epoch
    else:
        batch = min(config.batch_size, n)
        steps_per_epoch = math.ceil(n / batch)
        rows_per_step = batch
    per_model = rows_per_step * (DPSGDF_ROW_COST if group_adaptive else DP_ROW_COST if private else 1.0)
    probe = data.probe
    if probe is not None:
        if probe.rows_X is not None and probe.observes_rows:
            per_model += PROBE_ROW_COST * probe.rows_X.shape[0]
        if private and probe.gradient is not None:
            per_model += GRADIENT_CANARY_COST * probe.gradient.count
    steps = config.epochs * steps_per_epoch
    models = len(jobs)
    overheads = 1 if stacked else models
    setup = 0.0
    if private:
        for job in jobs:
            accountant = getattr(job.arm, "accountant", "prv")
            key = (job.epsilon, job.delta, accountant, steps_per_epoch, steps)
            if key not in mechanisms:
                mechanisms.add(key)
                setup += CALIBRATION_S.get(accountant, CALIBRATION_S["prv"])
    return steps * (overheads * STEP_OVERHEAD + models * per_model), setup


def job_costs(jobs: Sequence[FitJob], config: TrainingConfig, *, stacked: bool,
              mechanisms: Mechanisms | None = None) -> list[JobWork]:
    """Estimated cost of each job of one trainer call (jobs that share their rows).

    With ``stacked`` (the batched trainer) the non-private, the DP-SGD and the DPSGD-F
    jobs are each trained as one batch whose cost is shared equally by its models;
    otherwise each job is trained alone. ``mechanisms`` (updated) holds the DP mechanisms whose calibration
    is already counted; without it, one calibration per distinct mechanism of ``jobs``.
    """
    mechanisms = mechanisms if mechanisms is not None else set()
    out = [JobWork(0.0)] * len(jobs)
    for batch in STACKED_BATCHES:
        members = [i for i, job in enumerate(jobs) if stacked_batch(job) == batch]
        if not members:
            continue
        private = batch != "plain"
        if stacked:
            cost, setup = _batch_cost([jobs[i] for i in members], config, private=private, stacked=True,
                                      mechanisms=mechanisms)
            for i in members:
                out[i] = JobWork(cost / len(members), setup / len(members))
        else:
            for i in members:
                out[i] = JobWork(*_batch_cost([jobs[i]], config, private=private, stacked=False,
                                              mechanisms=mechanisms))
    return out
