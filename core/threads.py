"""Torch's CPU thread count: results depend on it, so a job's caller decides it and the job restores it afterwards."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from core.errors import LearngeneError, Setting

MAX_THREADS = 1024


@contextmanager
def torch_threads(threads: int | None) -> Iterator[int]:
    """Run the block with `threads` torch threads (None: the current count); yields the count, restores the old one."""
    previous = torch.get_num_threads()
    threads = previous if threads is None else threads
    if isinstance(threads, bool) or not isinstance(threads, int) or not 1 <= threads <= MAX_THREADS:
        raise LearngeneError(f"thread count {threads!r} is not a whole number from 1 to {MAX_THREADS}: pass one")
    torch.set_num_threads(threads)
    try:
        yield threads
    finally:
        torch.set_num_threads(previous)


def default_threads() -> int:
    """Threads for a job whose user chose none: OMP_NUM_THREADS when set, else the cores this process may use.

    It depends on the machine and its settings only, never on the load, so the same job gives the same numbers.
    """
    configured = os.environ.get("OMP_NUM_THREADS", "").strip()
    if configured.isdigit() and 1 <= int(configured) <= MAX_THREADS:
        return int(configured)
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    return max(1, min(cores, MAX_THREADS))


def thread_words(threads: int) -> str:
    """'1 thread' or 'N threads'."""
    return f"{threads} thread{'' if threads == 1 else 's'}"


def changed_threads(run: Path, recorded: int, threads: int) -> LearngeneError:
    """The refusal to resume a run with another thread count than it was trained with (its numbers would change)."""
    return LearngeneError(
        f"run {run} was trained with {thread_words(recorded)}; ",
        Setting("threads", str(threads)),
        " would change its numbers: resume with ",
        Setting("threads", str(recorded)),
        " or leave ",
        Setting("threads"),
        " out",
    )
