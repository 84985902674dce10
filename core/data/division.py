"""Class divisions: disjoint source, open-world and novel class pools, seeded or fixed (the paper's CIFAR-100 one)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch

from core.data.cifar100 import paper_division
from core.errors import LearngeneError
from core.seeding import generator


@dataclass(frozen=True)
class ClassDivision:
    """Disjoint class pools: source (collective training), open-world (mixed in later), novel (targets)."""

    source: tuple[int, ...]
    open_world: tuple[int, ...]
    novel: tuple[int, ...]

    def as_dict(self) -> dict:
        """JSON-ready form."""
        return {k: list(v) for k, v in asdict(self).items()}


def divide_classes(
    num_classes: int,
    *,
    seed: int,
    novel_fraction: float = 0.2,
    open_world_fraction: float = 0.16,
    fixed: dict[str, list[int]] | None = None,
) -> ClassDivision:
    """Split class ids into source, open-world and novel pools (64/16/20 by default, as the paper)."""
    if fixed is not None:
        return ClassDivision(tuple(fixed["base"]), tuple(fixed["open_world"]), tuple(fixed["novel"]))
    if not (0 < novel_fraction < 1 and 0 <= open_world_fraction < 1 and novel_fraction + open_world_fraction < 1):
        raise LearngeneError(
            "class fractions must be in (0, 1) and sum to less than 1: e.g. novel 0.2, open-world 0.16"
        )
    perm = torch.randperm(num_classes, generator=generator(seed, 1)).tolist()
    n_novel = max(1, round(num_classes * novel_fraction))
    n_open = round(num_classes * open_world_fraction)
    novel = sorted(perm[:n_novel])
    open_world = sorted(perm[n_novel : n_novel + n_open])
    source = sorted(perm[n_novel + n_open :])
    return ClassDivision(tuple(source), tuple(open_world), tuple(novel))


def division_for(
    dataset: str, class_names: Sequence[str], *, seed: int, novel_fraction: float, open_world_fraction: float
) -> ClassDivision:
    """The class division of a run: the paper's for CIFAR-100, a seeded one otherwise."""
    fixed = paper_division(list(class_names)) if dataset == "cifar100" else None
    return divide_classes(
        len(class_names), seed=seed, novel_fraction=novel_fraction, open_world_fraction=open_world_fraction, fixed=fixed
    )
