"""``run_sweep``: audit every point of a sweep, resumably, and gather one tidy result.

With an output folder, each point's audit is written to ``OUT/points/<key>.json`` the
moment it finishes (atomically: a file is whole or absent), next to ``OUT/sweep-plan.json``
(the configuration the points belong to). Running the same sweep into the same folder
again resumes: finished points are read back, never recomputed; a folder holding another
configuration's points is refused rather than mixed in.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd

from .._exceptions import ConfigError, FairprivError
from ..data._datasets import Dataset, load_dataset
from ..pipeline._config import ProgressEvent
from ..pipeline._events import format_duration
from ..result._container import AuditResult
from ._backends import get_sweep_backend
from ._config import SweepConfig, SweepPoint
from ._result import SweepResult, concat_points, point_rows, write_atomic

__all__ = ["SweepEvent", "run_sweep"]

PLAN_FILE = "sweep-plan.json"
POINTS_DIR = "points"


@dataclass(frozen=True)
class SweepEvent:
    """Progress of a sweep: points finished, and the running point's own audit event (for
    points audited in this process; ``None`` for Ray tasks and finished points)."""

    points_done: int
    points_total: int
    point: str | None
    audit: ProgressEvent | None = None
    elapsed_s: float = 0.0

    @property
    def fraction(self) -> float:
        inner = self.audit.fraction if self.audit is not None else 0.0
        return min(1.0, (self.points_done + inner) / max(1, self.points_total))

    def describe(self) -> str:
        head = f"Sweep: {self.points_done}/{self.points_total} points"
        if self.point is None:
            return f"{head} · {format_duration(self.elapsed_s)}"
        if self.audit is None or self.audit.stage == "done":
            return f"{head} (finished {self.point})"
        return f"{head} · now {self.point}: {self.audit.describe()}"


SweepCallback = Callable[[SweepEvent], None]


def run_sweep(data: Dataset | str | Path | pd.DataFrame, config: SweepConfig | None = None, *,  # noqa: PLR0913
              out: str | Path | None = None, resume: bool = True, progress: SweepCallback | None = None,
              show_progress: bool = False, backend: str | None = None, address: str | None = None,
              **load_options: Any) -> SweepResult:
    """Audit every point of ``config`` on the same splits; return one tidy :class:`SweepResult`.

    Parameters
    ----------
    data
        A :class:`~audit.Dataset` or anything :func:`~audit.load_dataset` takes (with
        ``load_options``).
    config
        The sweep (default :class:`SweepConfig`: every arm, epsilons 0.5-8, budgets
        0.1-0.5, the default audit).
    out
        Folder for ``sweep.json``, ``sweep.parquet`` and each point's audit (which makes
        the sweep resumable); ``None`` keeps everything in memory.
    resume
        Read back the points already in ``out`` (default); ``False`` starts afresh,
        deleting them.
    progress, show_progress
        ``progress(SweepEvent)`` as points advance; a text/notebook bar.
    backend, address
        Shorthands for the configuration's ``backend`` (``"local"`` or ``"ray"``) and Ray
        ``address``: ``run_sweep(data, config, backend="ray", address="auto")``.

    Examples
    --------
    >>> from audit import AuditConfig, PrivacyAuditConfig, SweepConfig, TrainingConfig
    >>> audit = AuditConfig(seeds=1, n_bootstrap=0, training=TrainingConfig(epochs=1),
    ...                     privacy_audit=PrivacyAuditConfig(mia="none", canaries=0))
    >>> sweep = run_sweep("synthetic", SweepConfig(arms=("baseline", "dp_sgd"), epsilons=(1, 4),
    ...                   audit=audit), n_rows=1000)
    >>> sweep.points
    ['baseline', 'dp_sgd-eps1', 'dp_sgd-eps4']
    """
    config = config or SweepConfig()
    if backend is not None or address is not None:
        config = replace(config, backend=backend or config.backend,
                         address=address if address is not None else config.address)
    started = time.perf_counter()
    dataset = data if isinstance(data, Dataset) else load_dataset(data, **load_options)
    points = config.points()
    store = _PointStore(Path(out), config, resume) if out is not None else None
    finished: dict[str, AuditResult] = store.finished(points) if store is not None else {}
    reused = sorted(finished)
    bar = _Bar() if show_progress else None

    def report(point: SweepPoint | None, event: ProgressEvent | None = None) -> None:
        sweep_event = SweepEvent(len(finished), len(points), point.key if point else None, event,
                                 time.perf_counter() - started)
        for callback in (progress, bar):
            if callback is not None:
                callback(sweep_event)

    try:
        report(None)
        work = [(p, config.point_config(p)) for p in points if p.key not in finished]
        for point, result in get_sweep_backend(config).run(dataset, work, on_event=report):
            if store is not None:
                store.write(point, result)
            finished[point.key] = result
            report(point)
        frame = concat_points([point_rows(p, finished[p.key]) for p in points])
        elapsed = time.perf_counter() - started
        sweep = SweepResult(config=config.to_dict(), dataset=finished[points[0].key].dataset, frame=frame,
                            meta={"backend": config.backend, "elapsed_s": elapsed,
                                  "points_reused": reused})
        if store is not None:
            sweep.save(store.root)
        report(None)
    finally:
        if bar is not None:
            bar.close()
    return sweep


class _PointStore:
    """The points of one sweep configuration in ``root``."""

    def __init__(self, root: Path, config: SweepConfig, resume: bool) -> None:
        self.root, self.points = root, root / POINTS_DIR
        plan = {"config_hash": config.config_hash(), "config": config.to_dict()}
        plan_path = root / PLAN_FILE
        if plan_path.exists() and resume:
            try:
                held = json.loads(plan_path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                held = {}
            if held.get("config_hash") != plan["config_hash"]:
                raise ConfigError(
                    f"'{root}' holds the points of a sweep with another configuration; write this "
                    "one to another output folder, or pass resume=False to replace them", param="out")
        elif not resume and self.points.exists():
            shutil.rmtree(self.points)
        self.points.mkdir(parents=True, exist_ok=True)
        write_atomic(plan_path, json.dumps(plan, indent=2, default=str))

    def finished(self, points: list[SweepPoint]) -> dict[str, AuditResult]:
        """The points whose audit is in the folder and reads back whole."""
        out = {}
        for point in points:
            path = self.points / f"{point.key}.json"
            if not path.exists():
                continue
            try:
                out[point.key] = AuditResult.from_json(path.read_text(encoding="utf-8"))
            except FairprivError:
                continue  # unreadable: audited again
        return out

    def write(self, point: SweepPoint, result: AuditResult) -> None:
        write_atomic(self.points / f"{point.key}.json", result.to_json())


class _Bar:
    """A tqdm bar over a sweep's points (the running point's audit in its text)."""

    #: Seconds between two redraws (a point's start or end redraws at once).
    REFRESH_S = 0.2

    def __init__(self) -> None:
        from tqdm.auto import tqdm

        self._bar = tqdm(total=1000, bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}", leave=True,
                         file=sys.stderr)
        self._drawn = 0.0

    def __call__(self, event: SweepEvent) -> None:
        now = time.perf_counter()
        if event.audit is not None and now - self._drawn < self.REFRESH_S:
            return
        self._drawn = now
        self._bar.set_description_str(event.describe(), refresh=False)
        self._bar.n = round(1000 * event.fraction)
        self._bar.refresh()

    def close(self) -> None:
        self._bar.close()
