"""One stream of progress events for every front end (CLI bar, notebooks, the app).

Every model an audit trains is counted (solver candidates, arms, shadow models, canary
runs), so ``done / total`` means what it says.
"""

from __future__ import annotations

import time
from typing import Any

from ..training._trainer import FitJob
from ._config import ProgressCallback, ProgressEvent

__all__ = ["Progress"]

#: The stage reported when a model of each purpose finishes.
_TRAINED_STAGE = {"solver": "solved", "arm": "trained", "shadow": "shadow", "canary": "canary"}


class Progress:
    """Counts trained models and forwards events to a callback and/or a tqdm bar."""

    def __init__(self, callback: ProgressCallback | None, *, show_bar: bool) -> None:
        self.callback = callback
        self.show_bar = show_bar
        self.started = time.perf_counter()
        self.total = 0
        self.done = 0
        self._bar: Any = None

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def expect(self, jobs: int) -> None:
        """Add ``jobs`` models to the total (each plan announces its jobs before training)."""
        self.total += jobs
        if self.show_bar:
            if self._bar is None:
                from tqdm.auto import tqdm

                self._bar = tqdm(total=self.total, unit="model", leave=False)
            else:
                self._bar.total = self.total
                self._bar.refresh()

    def stage(self, stage: str, *, arm: str | None = None, seed: int | None = None) -> None:
        if self.callback is not None:
            self.callback(ProgressEvent(stage, arm, seed, self.done, self.total, self.elapsed))

    def starting(self, job: FitJob) -> None:
        self.stage("solve" if job.purpose == "solver" else "train", arm=job.arm.label, seed=job.seed)

    def fitted(self, job: FitJob) -> None:
        self.done += 1
        if self._bar is not None:
            self._bar.set_description(f"{job.purpose} {job.arm.label} seed {job.seed}")
            self._bar.update(1)
        self.stage(_TRAINED_STAGE[job.purpose], arm=job.arm.label, seed=job.seed)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
