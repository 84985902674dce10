"""Source task streams and few-shot tasks over an image set, as index tensors with labels 0..N-1."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from core.data.division import ClassDivision
from core.data.imageset import ImageSet
from core.errors import LearngeneError, Setting
from core.seeding import generator


@dataclass(frozen=True)
class SourceTask:
    """One task of the source stream: its classes, training images, and held-out images for open-world scoring."""

    task_id: int
    classes: tuple[int, ...]
    train: torch.Tensor
    train_labels: torch.Tensor
    heldout: torch.Tensor
    heldout_labels: torch.Tensor


def _class_orders(imageset: ImageSet, seed: int) -> list[torch.Tensor]:
    """A fixed seeded permutation of each class's images: train images first, held-out after."""
    return [
        idx[torch.randperm(len(idx), generator=generator(seed, 2, c))]
        for c, idx in enumerate(imageset.indices_by_class())
    ]


def source_stream(
    imageset: ImageSet,
    division: ClassDivision,
    *,
    tasks: int,
    classes_per_task: int,
    images_per_class: int,
    heldout_per_class: int,
    seed: int,
    open_world_from: int | None = None,
) -> list[SourceTask]:
    """T source tasks of C random classes each (source pool, plus the open-world pool from `open_world_from` on)."""
    if tasks < 1 or classes_per_task < 2 or images_per_class < 1 or heldout_per_class < 0:
        raise LearngeneError("tasks >= 1, classes per task >= 2, images per class >= 1 and held-out >= 0 are required")
    available = imageset.images_per_class()
    if images_per_class + heldout_per_class > available:
        counts = torch.bincount(imageset.labels, minlength=imageset.num_classes)
        smallest = imageset.class_names[int(counts.argmin())]
        raise LearngeneError(
            f"class {smallest!r} of {imageset.name} has {available} images, but a source task takes "
            f"{images_per_class} training + {heldout_per_class} held-out images of each class: add images to it "
            "or remove that class from the data"
        )
    if classes_per_task > len(division.source):
        raise LearngeneError(
            f"{classes_per_task} classes per task need a source pool that large, but {imageset.name} has "
            f"{len(division.source)} source classes: use fewer classes per task"
        )
    orders = _class_orders(imageset, seed)
    stream = []
    for t in range(tasks):
        pool = list(division.source)
        if open_world_from is not None and t >= open_world_from:
            pool += list(division.open_world)
        pick = torch.randperm(len(pool), generator=generator(seed, 3, t))[:classes_per_task]
        classes = tuple(sorted(pool[i] for i in pick.tolist()))
        train = torch.cat([orders[c][:images_per_class] for c in classes])
        held = torch.cat([orders[c][images_per_class : images_per_class + heldout_per_class] for c in classes])
        stream.append(
            SourceTask(
                task_id=t,
                classes=classes,
                train=train,
                train_labels=torch.arange(len(classes)).repeat_interleave(images_per_class),
                heldout=held,
                heldout_labels=torch.arange(len(classes)).repeat_interleave(heldout_per_class),
            )
        )
    return stream


@dataclass(frozen=True)
class FewShotTask:
    """An N-way K-shot target task: support and query image indices with labels 0..N-1."""

    task_id: int
    classes: tuple[int, ...]
    support: torch.Tensor
    support_labels: torch.Tensor
    query: torch.Tensor
    query_labels: torch.Tensor


def few_shot_tasks(
    imageset: ImageSet,
    classes: tuple[int, ...],
    *,
    way: int,
    shot: int,
    query: int,
    tasks: int,
    seed: int,
) -> list[FewShotTask]:
    """M few-shot tasks over the given (novel) classes; query images are other images of the same classes."""
    if way < 2 or shot < 1 or query < 1 or tasks < 1:
        raise LearngeneError("way >= 2, shot >= 1, query >= 1 and tasks >= 1 are required")
    if way > len(classes):
        raise LearngeneError(
            f"{way}-way tasks need {way} novel classes, but only {len(classes)} exist: lower ", Setting("way")
        )
    available = imageset.images_per_class()
    if shot + query > available:
        raise LearngeneError(
            f"shot {shot} + query {query} exceed the {available} images per class of {imageset.name}: lower ",
            Setting("shot"),
            " or ",
            Setting("query"),
            f" so they sum to at most {available}",
        )
    by_class = imageset.indices_by_class()
    result = []
    for m in range(tasks):
        g = generator(seed, 4, m)
        pick = torch.randperm(len(classes), generator=g)[:way].tolist()
        chosen = tuple(classes[i] for i in pick)
        support, queries = [], []
        for c in chosen:
            idx = by_class[c][torch.randperm(len(by_class[c]), generator=g)]
            support.append(idx[:shot])
            queries.append(idx[shot : shot + query])
        result.append(
            FewShotTask(
                task_id=m,
                classes=chosen,
                support=torch.cat(support),
                support_labels=torch.arange(way).repeat_interleave(shot),
                query=torch.cat(queries),
                query_labels=torch.arange(way).repeat_interleave(query),
            )
        )
    return result
