"""The engine that every asker of one process shares, and the store of one runs root that every process shares.

Every kernel (the explorer's pages, the tutorials) connects to the scheduler named by $DASK_SCHEDULER_ADDRESS
(`make explore` starts one for the whole server); without it, the first job of a process starts a local cluster
that its later jobs share. Identical jobs have one key, so they run once and every asker follows them.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from core.collective.runs import CONFIG, open_run
from core.errors import LearngeneError
from core.jobs.cluster import Engine, job_threads, start_engine
from core.jobs.store import JobStore
from core.jobs.workers import scheduler_address

RESULTS = ".results"  # few-shot results by key, beside the runs (not a run: no config.json)
THREADS_VARIABLE = "LEARNGENE_PAGE_THREADS"  # torch threads per job on a server's cluster (set by explorer.server)

_engines: dict[Path, Engine] = {}
_engines_lock = threading.Lock()


def shared_store(runs_root: Path) -> JobStore:
    """The shared job store of a runs root: runs under their names, few-shot results in its .results folder."""
    runs = Path(runs_root).expanduser().resolve()
    return JobStore(runs, runs / RESULTS)


def shared_engine(runs_root: Path) -> Engine:
    """This process's engine for a runs root: one connection (or local cluster) per process, made on first use and
    shared by every panel and runs root."""
    store = shared_store(runs_root)
    with _engines_lock:
        engine = _engines.get(store.runs)
        if engine is None:
            first = next(iter(_engines.values()), None)
            if first is None:
                engine = start_engine(store, dashboard=False)
            else:
                engine = Engine(first.client, store, first.threads)
            _engines[store.runs] = engine
        return engine


def shared_threads(run_dir: Path | None = None) -> int:
    """Torch threads of a job on the shared engine: the count a run with finished tasks was trained with (its
    resumption keeps it), else the server cluster's layout ($LEARNGENE_PAGE_THREADS, workers x threads = cores), else
    the local engine's; never a count guessed from the machine's load."""
    if run_dir is not None and (Path(run_dir) / CONFIG).is_file():
        try:
            run = open_run(run_dir)
        except LearngeneError:
            run = None
        if run is not None and run.finished_tasks > 0 and run.threads is not None:
            return run.threads
    given = os.environ.get(THREADS_VARIABLE, "")
    return job_threads(scheduler_address(None), None, int(given) if given.isdigit() and int(given) > 0 else None)
