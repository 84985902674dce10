"""Where a job's workers come from: the scheduler a user names (or $DASK_SCHEDULER_ADDRESS), else local worker
processes forked from a fork server that imports torch once.

This module imports nothing heavy, so that a command can start the fork server before it imports Dask and torch
itself: the fork server's imports (about two seconds here) then run on the other core while the command's own run.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.forkserver
import os

ADDRESS_VARIABLE = "DASK_SCHEDULER_ADDRESS"
# What the fork server imports once, so that each worker forked from it starts with torch and the engine loaded.
FORKSERVER_PRELOAD = ["distributed", "numpy", "torch", "core.jobs.execute"]


def scheduler_address(scheduler: str | None) -> str | None:
    """The scheduler to use: the one given, else $DASK_SCHEDULER_ADDRESS, else None (a local cluster)."""
    return scheduler or os.environ.get(ADDRESS_VARIABLE) or None


def forkserver_available() -> bool:
    """Whether this platform can fork workers from a fork server (Linux, macOS)."""
    return "forkserver" in multiprocessing.get_all_start_methods()


def preload_fork_server() -> None:
    """Make the fork server, when it starts, import FORKSERVER_PRELOAD (replacing any list set before, Dask's too)."""
    multiprocessing.get_context("forkserver").set_forkserver_preload(FORKSERVER_PRELOAD)


def start_fork_server(scheduler: str | None) -> bool:
    """Start the local workers' fork server now, unless the jobs go to another scheduler or the platform has none;
    whether it runs. Harmless when it already runs: the cluster's workers are forked from this one."""
    if scheduler_address(scheduler) is not None or not forkserver_available():
        return False
    preload_fork_server()
    multiprocessing.forkserver.ensure_running()
    return True
