"""`--scheduler ADDRESS` for `collective` and `individual`: the command's one job on an existing Dask cluster."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from core.errors import LearngeneError
from core.events import Listener

if TYPE_CHECKING:  # Dask and torch load when a job is run, not when the command line is read
    from core.jobs.execute import Job, Outcome
    from core.jobs.store import JobStore


def scheduler_text(text: str) -> str:
    """argparse type: a Dask scheduler address, [PROTOCOL://]HOST:PORT."""
    host, _, port = text.split("://")[-1].rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536 or text != text.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is not a scheduler address: write e.g. tcp://HOST:8786")
    return text


def add_scheduler_option(p: argparse.ArgumentParser) -> None:
    """--scheduler, shared by the commands that can run their job on a cluster."""
    p.add_argument(
        "--scheduler",
        type=scheduler_text,
        help="run the job on the Dask cluster of this scheduler (e.g. tcp://host:8786; its workers must see the run "
        "folder and the data at the same paths); default: in this process",
    )


def run_remotely(job: Job, store: JobStore, scheduler: str, listeners: list[Listener], shared: list[str]) -> Outcome:
    """Submit `job` to the cluster, follow its events, and wait; Ctrl-C cancels it (unless another client wants it)."""
    from core.jobs.cluster import start_engine

    engine = start_engine(store, scheduler=scheduler, dashboard=False)
    try:
        engine.check_workers_see(shared)
        future = engine.submit(job, listeners=listeners)
        try:
            return engine.outcome(future)
        except KeyboardInterrupt:
            engine.cancel(future)
            raise
    finally:
        engine.close()


def run_folder_store(run_dir: str) -> tuple[Path, JobStore]:
    """A run folder (absolute) and the job store whose runs live beside it, results in its .results folder."""
    from core.jobs.shared import RESULTS
    from core.jobs.store import JobStore

    folder = Path(run_dir).expanduser().resolve()
    if folder.parent == folder:
        raise LearngeneError(f"--run-dir {run_dir} is not a folder inside another: choose e.g. runs/NAME")
    return folder, JobStore(folder.parent, folder.parent / RESULTS)
