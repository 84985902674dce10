"""Fixed few-shot tasks from a folder: `PATH/<episode>/support/<class>/<images>` and `.../query/<class>/<images>`.

Each episode is one target task, its way and shot being what its folders hold (the standard Omniglot one-shot
runs, or a teacher's own drawings). Episodes are read in sorted order; support and query of an episode must have
the same classes, and every episode of a folder the same number of them (the individual model has one head size).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from core.data.image_io import decode_classes
from core.data.imagefolder import scan
from core.data.imageset import ImageSet
from core.data.tasks import FewShotTask
from core.errors import LearngeneError
from core.names import shown

PARTS = ("support", "query")
LAYOUT = "<episode>/support/<class>/<images> and <episode>/query/<class>/<images>"


@dataclass(frozen=True)
class EpisodeInfo:
    """One episode as found on disk: its name, classes, and images per class in support and query."""

    name: str
    classes: tuple[str, ...]
    support: tuple[int, ...]
    query: tuple[int, ...]

    @property
    def shot(self) -> int | None:
        """Support images per class, or None when the classes hold different numbers."""
        return self.support[0] if len(set(self.support)) == 1 else None

    @property
    def query_size(self) -> int | None:
        """Query images per class, or None when the classes hold different numbers."""
        return self.query[0] if len(set(self.query)) == 1 else None

    def as_dict(self) -> dict:
        """JSON-ready summary."""
        return {"name": self.name, "way": len(self.classes), "shot": self.shot, "query": self.query_size}


def _subfolders(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def looks_like_episodes(folder: Path) -> bool:
    """Whether some subfolder of `folder` holds a support/ or query/ folder (the episodes layout)."""
    try:
        return any((p / part).is_dir() for p in _subfolders(folder) for part in PARTS)
    except OSError:
        return False


def scan_episodes(folder: Path) -> list[tuple[EpisodeInfo, dict[str, list[Path]], dict[str, list[Path]]]]:
    """Every episode with its support and query files, checked; raises LearngeneError naming the episode at fault."""
    try:
        if not folder.is_dir():
            raise LearngeneError(f"episodes folder {shown(folder)} does not exist: make one holding {LAYOUT}")
        episodes = _subfolders(folder)
    except OSError as err:
        raise LearngeneError(
            f"cannot list {shown(folder)} ({shown(str(err))}): check the folder's permissions"
        ) from err
    if not episodes:
        raise LearngeneError(f"{shown(folder)} holds no episodes: make subfolders {LAYOUT}")
    found = []
    for path in episodes:
        parts = {}
        for part in PARTS:
            if not (path / part).is_dir():
                raise LearngeneError(f"episode {shown(path.name)} has no {part}/ folder: give it {LAYOUT}")
            parts[part] = scan(path / part)
        support, query = parts["support"], parts["query"]
        if list(support) != list(query):
            raise LearngeneError(
                f"episode {shown(path.name)}: its query classes ({', '.join(map(shown, query))}) differ from its "
                f"support classes ({', '.join(map(shown, support))}): give support/ and query/ the same class folders"
            )
        if len(support) < 2:
            raise LearngeneError(f"episode {shown(path.name)} has {len(support)} class: an episode needs at least 2")
        info = EpisodeInfo(
            path.name, tuple(support), tuple(len(f) for f in support.values()), tuple(len(f) for f in query.values())
        )
        first = found[0][0] if found else info
        if len(info.classes) != len(first.classes):
            raise LearngeneError(
                f"episode {shown(info.name)} is {len(info.classes)}-way but episode {shown(first.name)} is "
                f"{len(first.classes)}-way: every episode of a folder needs the same number of classes (the model has "
                "one head size)"
            )
        found.append((info, support, query))
    return found


def load_episodes(
    folder: Path, *, image_size: int, channels: int
) -> tuple[ImageSet, list[FewShotTask], list[EpisodeInfo]]:
    """Decode every episode into one image set (a class per episode and class) and one few-shot task per episode."""
    found = scan_episodes(folder)
    groups, names, tasks = [], [], []
    start = 0
    for m, (info, support, query) in enumerate(found):
        ids = []
        for part, files in (("support", support), ("query", query)):
            for name, paths in files.items():
                groups.append([(str(p), lambda p=p: p) for p in paths])
                names.append(f"{info.name}/{part}/{name}")
                ids.append(len(groups) - 1)
        way = len(info.classes)
        sizes = list(info.support) + list(info.query)
        offsets = torch.tensor([0, *sizes]).cumsum(0) + start
        ranges = [torch.arange(int(offsets[i]), int(offsets[i + 1])) for i in range(2 * way)]
        tasks.append(
            FewShotTask(
                task_id=m,
                classes=tuple(ids[:way]),
                support=torch.cat(ranges[:way]),
                support_labels=torch.arange(way).repeat_interleave(torch.tensor(info.support)),
                query=torch.cat(ranges[way:]),
                query_labels=torch.arange(way).repeat_interleave(torch.tensor(info.query)),
            )
        )
        start = int(offsets[-1])
    images, labels = decode_classes(groups, image_size, channels)
    imageset = ImageSet("episodes", torch.from_numpy(images), torch.from_numpy(labels), tuple(names))
    return imageset, tasks, [info for info, _, _ in found]
