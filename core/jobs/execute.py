"""Running one job to its stored result, in this process: what the command line does, and what a worker does."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from core.collective.training import train_collective
from core.events import Listener
from core.jobs.fewshot import run_fewshot
from core.jobs.spec import CollectiveJob, FewShotJob
from core.jobs.store import JobStore
from core.threads import torch_threads

Job = CollectiveJob | FewShotJob


@dataclass(frozen=True)
class Outcome:
    """A finished job, as small data: its key, where its result lies, and whether it was already on disk."""

    key: str
    path: str
    reused: bool


def execute(
    job: Job,
    store: JobStore,
    listeners: Iterable[Listener] = (),
    should_stop: Callable[[], bool] | None = None,
) -> Outcome:
    """Run `job` unless its result is on disk under its key; a collective job resumes from its last committed task."""
    listeners = tuple(listeners)
    if isinstance(job, CollectiveJob):
        folder = store.run_dir(job)
        if store.run_finished(job):
            return Outcome(job.key, str(folder), True)
        train_collective(
            job.config,
            folder,
            root=job.root,
            resume=True,
            device=job.device,
            listeners=listeners,
            should_stop=should_stop,
            threads=job.threads,
            undo_failed_start=True,
        )
        return Outcome(job.key, str(folder), False)
    if store.result(job) is not None:
        return Outcome(job.key, str(store.result_path(job)), True)
    with torch_threads(job.threads):
        result = run_fewshot(job, listeners, should_stop)
    return Outcome(job.key, str(store.save_result(job, result)), False)
