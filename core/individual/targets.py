"""Few-shot target tasks shared by every method: support and query images, normalised once, with a seed per task."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch

from core.collective.runs import Run
from core.data import datasets
from core.data.imageset import ImageSet
from core.data.tasks import FewShotTask, few_shot_tasks
from core.data.transforms import normalise
from core.seeding import generator


@dataclass(frozen=True, eq=False)
class TargetTask:
    """One few-shot task with its images already normalised (shared by every method)."""

    task: FewShotTask
    support: torch.Tensor
    support_labels: torch.Tensor
    query: torch.Tensor
    query_labels: torch.Tensor
    seed: int


@dataclass(frozen=True, eq=False)
class Targets:
    """The M target tasks of one evaluation."""

    way: int
    shot: int
    query: int
    tasks: tuple[TargetTask, ...]


@functools.lru_cache(maxsize=2)
def _imageset(dataset: str, root: str | None, image_size: int, seed: int) -> ImageSet:
    return datasets.load(dataset, root, image_size=image_size, seed=seed)


def run_imageset(run: Run, root: str | None = None) -> ImageSet:
    """The run's dataset, kept in memory for repeated evaluations in one process."""
    root = None if root is None else str(root)
    return _imageset(run.config.dataset, root, run.config.image_size, run.config.seed)


def task_seed(seed: int, task_id: int) -> int:
    """The seed every method uses for target task `task_id` (model init, batch order, augmentation)."""
    return int(torch.randint(0, 2**62, (1,), generator=generator(seed, 21, task_id)))


def fitting_query(query: int, imageset: ImageSet, shot: int) -> int:
    """`query` images per class, lowered to what `shot` leaves (at least 1; few_shot_tasks reports a shortfall)."""
    return max(1, min(query, imageset.images_per_class() - shot))


def make_targets(
    run: Run, imageset: ImageSet, *, way: int, shot: int, query: int, tasks: int, seed: int, device: str = "cpu"
) -> Targets:
    """M target tasks from the run's novel classes, images normalised once."""
    novel = run.config.division(imageset.class_names).novel
    chosen = few_shot_tasks(imageset, novel, way=way, shot=shot, query=query, tasks=tasks, seed=seed)
    out = []
    for t in chosen:
        out.append(
            TargetTask(
                task=t,
                support=normalise(imageset.images[t.support], device),
                support_labels=t.support_labels.to(device),
                query=normalise(imageset.images[t.query], device),
                query_labels=t.query_labels.to(device),
                seed=task_seed(seed, t.task_id),
            )
        )
    return Targets(way, shot, query, tuple(out))
