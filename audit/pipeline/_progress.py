"""One stream of progress events for every front end (CLI bar, notebooks, the app).

:class:`Progress` is told, before anything is trained, every piece of work the audit will
do: each model (solver candidates and the closed form's fits, arms, shadow models, canary
runs) and each measurement step, with an estimate of what it costs in seconds. As work
is reported done, it turns that into :class:`~audit.ProgressEvent` objects and gives them
to the callback and/or the bar (:class:`ProgressBar`).

How ``fraction`` and ``eta_s`` are computed
------------------------------------------
Each piece of work has a *kind* (``"train"``; ``"setup"``, a DP model's noise
calibration before its steps; or a step kind of :data:`STEP_LABELS`) and a prior cost in
seconds: training from :mod:`audit.training._cost` (row passes, which know rows, epochs,
DP and how models are batched), the others from :mod:`._work`. The time between two
reports is charged to the work the later one reports done (a batch's first report after
its set-up is split: its steps are charged what training has cost so far); per kind,
``observed seconds / prior seconds of the work done`` rescales the prior of the work
left of that kind (a kind not yet observed keeps its prior). When work ``w`` is done
and ``R`` (rescaled, ``w`` included) was left, ``fraction += (1 - fraction) * w / R``:
with exact priors that is plain ``done / total``; when the priors were off, only what
is left is reweighted, so ``fraction`` never goes back and reaches 1 with the last
piece. ``eta_s`` is ``R - w``.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict, deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any

from .._exceptions import InternalError
from ..training._cost import SECONDS_PER_ROW_PASS, JobWork
from ..training._trainer import FitJob
from ._events import PURPOSE_STAGES, STAGES, STEP_LABELS, ProgressCallback, ProgressEvent

__all__ = ["Progress", "ProgressBar"]

#: ``eta_s`` is given once this many seconds of work have been timed (or 5% is done).
ETA_AFTER_S = 1.0
#: Work below this many prior seconds still counts (so that no remaining work is 0).
_MIN_PRIOR_S = 1e-6
#: The stages that train models (their counts make ``done`` and ``total``).
_TRAINING_STAGES = ("solver", "arms", "shadows", "canaries")


@dataclass(eq=False)
class _Item:
    """One piece of work: a model to train, or a step."""

    stage: str
    kind: str
    prior_s: float
    counts: bool  # a model (training stages) or a measurement step: counted in the stage
    arm: str | None = None
    seed: int | None = None
    epochs: int | None = None
    credited: float = 0.0  # the fraction of it reported done
    finished: bool = False
    setup: _Item | None = None  # a model's set-up before its steps (DP noise calibration)


class Progress:
    """Counts an audit's work and reports it to a callback and/or a bar.

    Plan everything with :meth:`add_jobs` and :meth:`add_step`, then :meth:`start`
    (the first event). Training reports through :meth:`advance` and :meth:`fitted`,
    steps through :meth:`step` (or :meth:`begin` and :meth:`complete`); :meth:`finish`
    reports ``"done"``. An exception the callback raises propagates to the caller of
    the method that reported the event: that is how a front end cancels an audit.
    """

    def __init__(self, callback: ProgressCallback | None, *, show_bar: bool = False) -> None:
        self.started = time.perf_counter()
        self._bar = ProgressBar() if show_bar else None
        self._sinks: list[ProgressCallback] = [s for s in (self._bar, callback) if s is not None]
        self._items: list[_Item] = []
        self._jobs: dict[int, tuple[FitJob, _Item]] = {}
        self._steps: dict[tuple[str, str | None, int | None], deque[_Item]] = defaultdict(deque)
        self._observed: dict[str, float] = defaultdict(float)  # seconds timed, per kind
        self._credited: dict[str, float] = defaultdict(float)  # prior seconds done, per kind
        self._left_s: dict[str, float] = defaultdict(float)  # prior seconds left, per kind
        self._stage_done: dict[str, int] = defaultdict(int)
        self._stage_total: dict[str, int] = defaultdict(int)
        self._open = 0  # pieces of work not wholly credited
        self._clock = self.started
        self._timed = 0.0
        self.fraction = 0.0
        self._eta: float | None = None
        self._stage = "solver"

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    # ----------------------------------------------------------------- planning

    def add_jobs(self, jobs: Sequence[FitJob], works: Sequence[JobWork], *, epochs: int) -> None:
        """Plan models to train, with their estimated cost (:meth:`audit.Executor.work`)."""
        for job, work in zip(jobs, works, strict=True):
            stage = PURPOSE_STAGES[job.purpose]
            item = _Item(stage, "train", max(work.row_passes * SECONDS_PER_ROW_PASS, _MIN_PRIOR_S), True,
                         job.arm.label, job.seed, epochs)
            self._add(item)
            if work.setup_s > 0:
                item.setup = _Item(stage, "setup", work.setup_s, False)
                self._add(item.setup)
            self._jobs[id(job)] = (job, item)

    def _add(self, item: _Item) -> None:
        self._items.append(item)
        self._open += 1
        self._left_s[item.kind] += item.prior_s
        if item.counts:
            self._stage_total[item.stage] += 1

    def replace_jobs(self, old: Sequence[FitJob], new: Sequence[FitJob], works: Sequence[JobWork], *,
                     epochs: int) -> None:
        """Swap planned models not yet started for the ones that will be trained (the
        solver's, once the closed form has run; the audit's, once rates are solved)."""
        for job in old:
            _, item = self._jobs.pop(id(job))
            if item.credited or item.finished:
                raise InternalError("a model already in training was re-planned")
            for part in (item, item.setup):
                if part is not None:
                    self._items.remove(part)
                    self._open -= 1
                    self._left_s[part.kind] -= part.prior_s
            self._stage_total[item.stage] -= 1
        self.add_jobs(new, works, epochs=epochs)

    def add_step(self, stage: str, kind: str, prior_s: float, *, arm: str | None = None,
                 seed: int | None = None, counts: bool = True) -> None:
        """Plan a step of work that is not training (``kind`` in :data:`STEP_LABELS`)."""
        if stage not in STAGES or kind not in STEP_LABELS:
            raise InternalError(f"unknown progress stage {stage!r} or step {kind!r}")
        item = _Item(stage, kind, max(prior_s, _MIN_PRIOR_S), counts, arm, seed)
        self._add(item)
        self._steps[(kind, arm, seed)].append(item)

    def start(self) -> None:
        """The first event: every total is known from here."""
        if not self._items:
            raise InternalError("an audit with nothing to do")
        self._clock = time.perf_counter()
        first = self._items[0]
        self._emit(first.stage, detail=STEP_LABELS.get(first.kind))

    # ----------------------------------------------------------------- training

    def advance(self, jobs: Sequence[FitJob], fraction: float) -> None:
        """``jobs`` (trained together) are ``fraction`` through their training."""
        # Jobs never planned (an executor reporting copies of them) are not counted.
        items = [self._jobs[id(job)][1] for job in jobs if id(job) in self._jobs]
        if not items:
            return
        work = 0.0
        fraction = min(1.0, fraction)
        for item in items:
            if fraction > item.credited:
                work += (fraction - item.credited) * item.prior_s
                item.credited = fraction
                if fraction == 1.0:
                    self._open -= 1
        if work > 0:
            self._credit_training(items, work)
        first = items[0]
        arms = {i.arm for i in items}
        seeds = {i.seed for i in items}
        epochs = first.epochs or 1
        epoch = epochs if fraction >= 1 else math.floor(fraction * epochs) + 1
        detail = f"epoch {epoch} of {epochs}"
        if len(items) > 1:
            detail = f"{len(items)} models together, {detail}"
        self._emit(first.stage, arm=arms.pop() if len(arms) == 1 else None,
                   seed=seeds.pop() if len(seeds) == 1 else None, detail=detail)

    def fitted(self, job: FitJob) -> None:
        """A model is trained (what its trainer did not report is credited now)."""
        if id(job) not in self._jobs:
            return
        _, item = self._jobs[id(job)]
        if item.credited < 1:
            work = (1 - item.credited) * item.prior_s
            item.credited = 1.0
            self._open -= 1
            self._credit_training([item], work)
        self._finished(item)
        self._emit(item.stage, arm=item.arm, seed=item.seed)

    def _finished(self, item: _Item) -> None:
        item.finished = True
        if item.counts:
            self._stage_done[item.stage] += 1

    # ----------------------------------------------------------------- steps

    def begin(self, kind: str, *, arm: str | None = None, seed: int | None = None) -> None:
        """A step (or a run of steps of one kind) starts; reports what is being done."""
        queue = self._steps.get((kind, arm, seed))
        stage = queue[0].stage if queue else next(
            (i.stage for i in self._items if i.kind == kind and not i.finished), "measure")
        self._emit(stage, arm=arm, seed=seed, detail=STEP_LABELS[kind])

    def complete(self, kind: str, *, arm: str | None = None, seed: int | None = None) -> None:
        """A planned step is done."""
        queue = self._steps.get((kind, arm, seed))
        if not queue:
            raise InternalError(f"progress: step {kind!r} ({arm}, {seed}) was not planned")
        item = queue.popleft()
        item.credited = 1.0
        self._open -= 1
        self._credit(kind, item.prior_s)
        self._finished(item)
        self._emit(item.stage, arm=arm, seed=seed, detail=STEP_LABELS[kind])

    @contextmanager
    def step(self, kind: str, *, arm: str | None = None, seed: int | None = None) -> Iterator[None]:
        """``with progress.step(kind, arm=...):`` reports the step's start and end."""
        self.begin(kind, arm=arm, seed=seed)
        yield
        self.complete(kind, arm=arm, seed=seed)

    def finish(self) -> None:
        """Everything is done: the ``"done"`` event (fraction 1).

        A planned step never reported is a bug (:mod:`._work` and :mod:`._measure`
        disagree); a model never reported (an executor that reports other objects than
        the jobs it was given) is counted done now."""
        left = [i for i in self._items if not i.finished and i.kind in STEP_LABELS]
        if left:
            raise InternalError(f"progress: {len(left)} planned step(s) never reported, e.g. "
                                f"{left[0].kind} of {left[0].arm} in {left[0].stage}")
        for _, item in self._jobs.values():
            if not item.finished:
                self._finished(item)
        self.fraction, self._eta = 1.0, 0.0
        self._emit("done")

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()

    # ----------------------------------------------------------------- internals

    def _ratio(self, kind: str) -> float:
        """Observed seconds per prior second of ``kind`` (1 until it has been timed)."""
        prior = self._credited.get(kind, 0.0)
        observed = self._observed.get(kind, 0.0)
        return observed / prior if prior > 0 and observed > 0 else 1.0

    def _left(self) -> float:
        """Rescaled seconds of the work left."""
        return sum(max(0.0, left) * self._ratio(kind) for kind, left in self._left_s.items())

    def _credit_training(self, items: Sequence[_Item], work: float) -> None:
        """Training steps are done, and the set-up of those models that had one pending:
        the time since the last credit paid for both; the steps are charged what the
        training timed so far predicts (their prior at first), the set-up the rest."""
        setups = [i.setup for i in items if i.setup is not None and not i.setup.finished]
        if setups:
            spent = time.perf_counter() - self._clock
            steps_s = min(spent, work * self._ratio("train"))
            for setup in setups:
                setup.credited, setup.finished = 1.0, True
                self._open -= 1
            self._credit("setup", sum(s.prior_s for s in setups), spent=spent - steps_s)
        self._credit("train", work)

    def _credit(self, kind: str, prior_s: float, *, spent: float | None = None) -> None:
        """``prior_s`` of ``kind`` is done; the time since the last credit (or ``spent``
        of it) paid for it."""
        now = time.perf_counter()
        if spent is None:
            spent, self._clock = now - self._clock, now
        else:
            self._clock += spent
        self._observed[kind] += spent
        self._credited[kind] += prior_s
        self._left_s[kind] -= prior_s
        self._timed += spent
        work = prior_s * self._ratio(kind)
        left = self._left()  # after the credit
        if self._open == 0 or left <= 0:
            self.fraction = 1.0
        else:
            self.fraction = min(1.0, self.fraction + (1 - self.fraction) * work / (left + work))
        if self._open == 0:
            left = 0.0
        self._eta = left if (self._timed >= ETA_AFTER_S or self.fraction >= 0.05) else None

    def _counts(self, stage: str) -> tuple[int, int]:
        if stage == "done":
            return self._models()
        return self._stage_done[stage], self._stage_total[stage]

    def _models(self) -> tuple[int, int]:
        return (sum(self._stage_done[s] for s in _TRAINING_STAGES),
                sum(self._stage_total[s] for s in _TRAINING_STAGES))

    def _emit(self, stage: str, *, arm: str | None = None, seed: int | None = None,
              detail: str | None = None) -> None:
        self._stage = stage
        if not self._sinks:
            return
        info = STAGES[stage]
        stage_done, stage_total = self._counts(stage)
        done, total = self._models()
        event = ProgressEvent(stage, arm, seed, done, total, self.elapsed, label=info.label,
                              stage_done=stage_done, stage_total=stage_total, unit=info.unit,
                              detail=detail, fraction=self.fraction, eta_s=self._eta)
        for sink in self._sinks:
            sink(event)


class ProgressBar:
    """Shows :class:`~audit.ProgressEvent` objects as a ``tqdm.auto`` bar: a widget in a
    notebook (with the ``notebook`` extra, which installs ipywidgets), text on stderr
    elsewhere. The description is the event's :meth:`~audit.ProgressEvent.headline`,
    the postfix its time left; ``run_audit(show_progress=True)`` and ``fairpriv run``
    use it. Pass it as ``progress=`` to combine it with a callback of your own.

    Parameters
    ----------
    file
        Where a text bar goes (default ``sys.stderr``).
    leave
        Keep the finished bar (``"Done: 96 models trained in 2 min 13 s"``) on screen.
    """

    #: Seconds between two redraws (a new stage or the end redraws at once).
    REFRESH_S = 0.2

    def __init__(self, *, file: IO[str] | None = None, leave: bool = True) -> None:
        self.file, self.leave = file, leave
        self._bar: Any = None
        self._stage: str | None = None
        self._drawn = 0.0

    def _open(self, desc: str) -> Any:
        from tqdm.auto import tqdm

        try:
            return self._make(tqdm, desc)
        except ImportError:  # a notebook without ipywidgets: tqdm.notebook cannot draw
            import warnings

            from tqdm.std import tqdm as text_tqdm

            warnings.warn("progress is shown as text: install fairpriv[notebook] (ipywidgets) for a "
                          "widget", stacklevel=3)
            return self._make(text_tqdm, desc)

    def _make(self, tqdm: Any, desc: str) -> Any:
        # No monitor thread: a cancelled audit leaves no thread behind.
        quiet = type("AuditProgressBar", (tqdm,), {"monitor_interval": 0})
        return quiet(total=100, desc=desc, file=self.file, leave=self.leave, dynamic_ncols=True,
                     bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}{postfix}")

    def __call__(self, event: ProgressEvent) -> None:
        if self._bar is None:
            self._bar = self._open(event.headline())
            # The bar's clock counts from the audit's start, as the events' does.
            self._bar.start_t -= event.elapsed_s
        bar = self._bar
        bar.n = 100 if event.stage == "done" else min(99, math.floor(event.fraction * 100))
        bar.set_description_str(event.headline(), refresh=False)
        bar.set_postfix_str(event.eta_text(), refresh=False)
        now = time.perf_counter()
        if event.stage != self._stage or event.stage == "done" or now - self._drawn >= self.REFRESH_S:
            bar.refresh()
            self._stage, self._drawn = event.stage, now
        if event.stage == "done":
            self.close()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
