"""Torch's thread count for one job: set on entry, restored on exit, so no caller leaks a changed global count."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


@contextlib.contextmanager
def torch_threads(count: int) -> Iterator[int]:
    """Run the body with torch using `count` threads, then restore the count it had."""
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield count
    finally:
        torch.set_num_threads(previous)
