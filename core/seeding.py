"""Seeded random streams: each (seed, stage, task) tuple gets a torch.Generator of its own."""

from __future__ import annotations

import torch


def generator(*keys: int) -> torch.Generator:
    """A torch.Generator seeded from a tuple of integers, so each (seed, stage, task) has its own stream."""
    value = 0
    for key in keys:
        value = (value * 1_000_003 + int(key)) % (2**63 - 1)
    return torch.Generator().manual_seed(value)
