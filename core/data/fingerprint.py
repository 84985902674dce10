"""What a run was trained on: the dataset's fingerprint, its class division by name, and the images' background.

A run records this when it starts, so that later commands compare the data they load with it instead of
recomputing the split from whatever the data root holds now (a class folder added after training would
otherwise turn source classes into "novel" ones without a word).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

import torch

from core.data.division import ClassDivision
from core.data.imageset import ImageSet
from core.data.polarity import background
from core.errors import LearngeneError

POOLS = ("source", "open_world", "novel")
_SHOWN = 3  # class names quoted in a message; the rest are counted


@dataclass(frozen=True)
class DataRecord:
    """The dataset a run was trained on (name, classes, images per class, sha256 of pixels and labels) and its pools."""

    dataset: str
    classes: tuple[str, ...]
    images_per_class: tuple[int, ...]
    sha256: str
    division: dict[str, tuple[str, ...]]
    background: float

    def as_dict(self) -> dict:
        """JSON-ready form, as stored under "data" in a run's config.json."""
        return {
            "dataset": self.dataset,
            "classes": list(self.classes),
            "images_per_class": list(self.images_per_class),
            "sha256": self.sha256,
            "division": {pool: list(names) for pool, names in self.division.items()},
            "background": self.background,
        }

    @classmethod
    def from_dict(cls, data: object, where: str) -> DataRecord:
        """Rebuild from `as_dict()` output; a damaged record is a LearngeneError naming `where`."""
        try:
            assert isinstance(data, Mapping)
            classes = tuple(str(name) for name in data["classes"])
            counts = tuple(int(n) for n in data["images_per_class"])
            division = {pool: tuple(str(name) for name in data["division"][pool]) for pool in POOLS}
            record = cls(
                str(data["dataset"]), classes, counts, str(data["sha256"]), division, float(data["background"])
            )
            assert len(counts) == len(classes) and all(set(names) <= set(classes) for names in division.values())
        except (AssertionError, KeyError, TypeError, ValueError):
            raise LearngeneError(
                f"the data record in {where} is damaged: delete the run and train again, or restore its config.json"
            ) from None
        return record

    def pool_indices(self, imageset: ImageSet, pool: str) -> tuple[int, ...]:
        """Indices in `imageset` of the classes of one pool (the imageset must hold the recorded classes)."""
        index = {name: i for i, name in enumerate(imageset.class_names)}
        return tuple(index[name] for name in self.division[pool])


def content_sha256(imageset: ImageSet) -> str:
    """sha256 of the decoded pixels, the labels and the class names: changes when any image or class does."""
    digest = hashlib.sha256()
    digest.update("\0".join(imageset.class_names).encode("utf-8", "surrogatepass"))
    digest.update(str(tuple(imageset.images.shape)).encode())
    digest.update(imageset.labels.to(torch.int64).contiguous().numpy().tobytes())
    digest.update(imageset.images.contiguous().numpy().tobytes())
    return digest.hexdigest()


def counts(imageset: ImageSet) -> tuple[int, ...]:
    """Images of each class, in class order."""
    return tuple(torch.bincount(imageset.labels, minlength=imageset.num_classes).tolist())


def data_record(imageset: ImageSet, division: ClassDivision) -> DataRecord:
    """The record a new run writes: fingerprint, the pools by class name, and the training images' background."""
    names = imageset.class_names
    pools = {pool: tuple(names[i] for i in getattr(division, pool)) for pool in POOLS}
    return DataRecord(
        imageset.name,
        names,
        counts(imageset),
        content_sha256(imageset),
        pools,
        round(background(imageset.images), 4),
    )


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:_SHOWN])
    return shown + (f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else "")


def class_difference(record: DataRecord, imageset: ImageSet) -> str | None:
    """What differs between the recorded classes and the loaded ones, or None when they are the same."""
    if imageset.class_names == record.classes:
        return None
    have, had = set(imageset.class_names), set(record.classes)
    added = [n for n in imageset.class_names if n not in had]
    missing = [n for n in record.classes if n not in have]
    parts = []
    if added:
        parts.append(f"{len(added)} class{'es' if len(added) > 1 else ''} added ({_names(added)})")
    if missing:
        parts.append(f"{len(missing)} class{'es' if len(missing) > 1 else ''} missing ({_names(missing)})")
    return ", ".join(parts) or "the classes are in another order"


def content_differences(record: DataRecord, imageset: ImageSet) -> list[str]:
    """Differences in images per class and in the pixels, for data whose classes match the record."""
    now = counts(imageset)
    changed = [
        f"{name} has {n} images, {m} when trained"
        for name, n, m in zip(record.classes, now, record.images_per_class)
        if n != m
    ]
    if changed:
        return [f"{len(changed)} class{'es' if len(changed) > 1 else ''} changed size ({_names(changed)})"]
    if content_sha256(imageset) != record.sha256:
        return ["the images differ from the training images (same classes and counts)"]
    return []


def check_for_targets(record: DataRecord, imageset: ImageSet, run: str) -> list[str]:
    """Refuse data whose classes differ from the record (the novel pool would be wrong); other differences are notes."""
    difference = class_difference(record, imageset)
    if difference is not None:
        raise LearngeneError(
            f"the {imageset.name} data differs from what run {run} was trained on ({difference}), so its recorded "
            "novel classes do not fit it: use the data root the run was trained on, or train a new run on this data"
        )
    return [
        f"{line}: target tasks may differ from earlier evaluations of {run}"
        for line in content_differences(record, imageset)
    ]


def check_for_resume(record: DataRecord, imageset: ImageSet, run: str) -> None:
    """Refuse to continue a run on data that differs from its record in any way (classes, counts or pixels)."""
    differences = [d for d in [class_difference(record, imageset)] if d is not None]
    differences = differences or content_differences(record, imageset)
    if differences:
        raise LearngeneError(
            f"the {imageset.name} data differs from what run {run} was trained on ({differences[0]}): resume with the "
            "data root the run started with, or train a new run"
        )


def unverified_note(run: str) -> str:
    """The one line that runs from before data records get."""
    return (
        f"run {run} was written before runs recorded their data: its class division is unverified (recomputed "
        "from the data as it is now); train the run again to record it"
    )
