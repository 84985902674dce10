"""`learngene sweep`: every collective run of a grid, every few-shot setting on each, as keyed jobs on Dask.

Finished jobs are found in the output folder by key and never run again, so a sweep stopped at any moment (the
client, a worker, the machine) finishes on a re-run with the rows an undisturbed sweep writes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from distributed import Future, as_completed

from core.errors import LearngeneError
from core.errors import Setting as Option
from core.jobs.cluster import Engine
from core.jobs.spec import CollectiveJob, FewShotJob
from core.jobs.store import JobStore
from core.jobs.sweep_spec import Setting, SweepSpec, collective_jobs, fewshot_job


@dataclass(frozen=True)
class Cell:
    """One few-shot job of the sweep: which collective run and which individual setting it belongs to."""

    run: CollectiveJob
    run_setting: Setting
    setting: Setting
    job: FewShotJob


@dataclass
class SweepPlan:
    """Every job of a sweep, and which of them are already finished on disk."""

    spec: SweepSpec
    store: JobStore
    runs: list[tuple[CollectiveJob, Setting]]
    cells: list[Cell]
    finished: set[str] = field(default_factory=set)

    @property
    def left(self) -> int:
        """Jobs still to run."""
        keys = {job.key for job, _ in self.runs} | {c.job.key for c in self.cells}
        return len(keys - self.finished)

    @property
    def total(self) -> int:
        """Distinct jobs in the sweep."""
        return len({job.key for job, _ in self.runs} | {c.job.key for c in self.cells})


def plan_sweep(spec: SweepSpec, store: JobStore, threads: int) -> SweepPlan:
    """The sweep's jobs (each collective run's few-shot jobs read its run folder in the store)."""
    runs = list(zip(collective_jobs(spec, threads), spec.collective))
    cells = []
    for run, run_setting in runs:
        for setting in spec.individual:
            job = fewshot_job(setting, str(store.run_dir(run)), run.key, threads, run.device, run.root)
            cells.append(Cell(run, run_setting, setting, job))
    plan = SweepPlan(spec, store, runs, cells)
    plan.finished = {job.key for job, _ in runs if store.run_finished(job)}
    plan.finished |= {c.job.key for c in cells if store.result(c.job) is not None}
    return plan


def run_plan(plan: SweepPlan, engine: Engine, on_done: Callable[[str], None] = lambda kind: None) -> None:
    """Submit every unfinished job (few-shot jobs after their run) and wait for all; `on_done(kind)` per job done."""
    engine.check_workers_see([str(plan.store.runs.parent)] + [job.root for job, _ in plan.runs if job.root])
    futures: dict[str, Future] = {}
    for job, _ in plan.runs:
        if job.key not in plan.finished and job.key not in futures:
            futures[job.key] = engine.submit(job)
    for cell in plan.cells:
        if cell.job.key in plan.finished or cell.job.key in futures:
            continue
        after = [futures[cell.run.key]] if cell.run.key in futures else []
        futures[cell.job.key] = engine.submit(cell.job, after=after)
    kinds = {future.key: key.split("-")[0] for key, future in futures.items()}
    for future in as_completed(list(futures.values())):
        try:
            future.result()
        except Exception as exc:  # noqa: BLE001 - a job's own error becomes one line naming the job
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            message = exc.parts if isinstance(exc, LearngeneError) else (first,)
            raise LearngeneError(
                f"job {future.key} failed (",
                *message,
                "); jobs that finished are kept: fix the cause and run the same sweep again",
            ) from None
        on_done(kinds[future.key])


def sweep_outputs(out: str | Path) -> JobStore:
    """The job store of a sweep's output folder (created if missing)."""
    folder = Path(out).expanduser()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LearngeneError(
            "cannot create ", Option("out", str(folder)), f" ({exc.strerror}): choose another folder"
        ) from None
    return JobStore.at(folder)
