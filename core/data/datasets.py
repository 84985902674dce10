"""Registry of datasets: what each one is, whether it is available here, and how to load it."""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from core.data.imageset import ImageSet
from core.errors import Action, LearngeneError, Message

DATASETS = ("glyphs", "omniglot", "cifar100", "imagefolder")
DATA_ENV = "LEARNGENE_DATA"


@dataclass(frozen=True)
class DatasetInfo:
    """What `learngene datasets` reports for one dataset."""

    name: str
    description: str
    classes: int | None
    images: int | None
    resolution: tuple[int, int]
    channels: int
    available: bool
    reason: Message
    how_to_get: Message

    def as_dict(self, words: Callable[[Message], str]) -> dict:
        """JSON-ready form, with the reason and the way to get the data worded by `words` (the audience's renderer)."""
        return {**asdict(self), "reason": words(self.reason), "how_to_get": words(self.how_to_get)}


def resolve_root(root: str | os.PathLike | None) -> Path | None:
    """The data root: `--root` if given, else $LEARNGENE_DATA, else None."""
    if root is not None and str(root) != "":
        return Path(root).expanduser()
    env = os.environ.get(DATA_ENV, "")
    return Path(env).expanduser() if env else None


def _module(name: str):
    if name not in DATASETS:
        raise LearngeneError(
            f"unknown dataset {name!r}: choose one of {', '.join(DATASETS)} (see ", Action("list_datasets"), ")"
        )
    return importlib.import_module(f"core.data.{name}")


def describe(name: str, root: str | os.PathLike | None = None) -> DatasetInfo:
    """Describe one dataset and whether it can be loaded from `root` (or $LEARNGENE_DATA)."""
    return _module(name).info(resolve_root(root))


def describe_all(root: str | os.PathLike | None = None) -> list[DatasetInfo]:
    """Describe every known dataset."""
    return [describe(name, root) for name in DATASETS]


def load(
    name: str,
    root: str | os.PathLike | None = None,
    *,
    image_size: int = 32,
    seed: int = 0,
    download: bool = False,
) -> ImageSet:
    """Load a dataset into memory as uint8 images, raising LearngeneError with a fix on failure."""
    if not isinstance(image_size, int) or not 8 <= image_size <= 256:
        raise LearngeneError(f"image size {image_size!r} is out of range: use an integer from 8 to 256")
    return _module(name).load(resolve_root(root), image_size=image_size, seed=seed, download=download)
