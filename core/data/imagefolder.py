"""Your own images: a folder with one subfolder per class, each holding that class's pictures.

Subfolders are searched recursively; hidden files and folders are skipped. The set is grayscale
(one channel) when every file is stored in a gray mode, otherwise RGB. Each image is centre-cropped
to a square and resized; transparent pixels become white.
"""

from __future__ import annotations

from pathlib import Path

import torch

from core.data.datasets import DatasetInfo
from core.data.image_io import decode_classes, is_grayscale_file
from core.data.imageset import ImageSet
from core.errors import Action, LearngeneError, Message
from core.names import shown

EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
DESCRIPTION = "your own images: one subfolder per class, centre-cropped to squares"
HOW_TO_GET: Message = (
    f"make a folder with one subfolder per class holding its images ({', '.join(EXTENSIONS)}), then ",
    Action("use_as_root"),
)


def _hidden(path: Path, top: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(top).parts)


def scan(folder: Path) -> dict[str, list[Path]]:
    """Class name -> its image files, both sorted; raises LearngeneError naming what is missing."""
    try:
        if not folder.is_dir():
            raise LearngeneError(f"image folder {shown(folder)} does not exist: ", Action("image_root"))
        classes = sorted(p for p in folder.iterdir() if p.is_dir() and not _hidden(p, folder))
        if not classes:
            raise LearngeneError(
                f"{shown(folder)} has no class subfolders: put each class's images in its own subfolder of "
                f"{shown(folder)}"
            )
        found = {}
        for path in classes:
            files = sorted(
                p for p in path.rglob("*") if p.suffix.lower() in EXTENSIONS and p.is_file() and not _hidden(p, path)
            )
            if not files:
                raise LearngeneError(
                    f"class folder {shown(path)} has no images ({', '.join(EXTENSIONS)}): add some or remove it"
                )
            found[path.name] = files
    except OSError as err:
        raise LearngeneError(
            f"cannot list {shown(folder)} ({shown(str(err))}): check the folder's permissions"
        ) from err
    return found


def channels_of(found: dict[str, list[Path]]) -> int:
    """1 if every image file is stored in a gray mode, else 3 (read from headers only)."""
    return 1 if all(is_grayscale_file(p) for files in found.values() for p in files) else 3


def load(root: Path | None, *, image_size: int = 32, seed: int = 0, download: bool = False) -> ImageSet:
    """Decode every image of the folder `root`; the order is sorted, so `seed` is unused; nothing to download."""
    if root is None:
        raise LearngeneError("imagefolder needs a folder: ", *HOW_TO_GET)
    found = scan(root)
    channels = channels_of(found)
    classes = [[(str(path), lambda path=path: path) for path in files] for files in found.values()]
    images, labels = decode_classes(classes, image_size, channels)
    return ImageSet("imagefolder", torch.from_numpy(images), torch.from_numpy(labels), tuple(found))


def info(root: Path | None) -> DatasetInfo:
    """Describe the folder from its listing and image headers (nothing is decoded)."""
    if root is None:
        reason = ("no data root: ", Action("no_data_root"))
        return DatasetInfo("imagefolder", DESCRIPTION, None, None, (32, 32), 3, False, reason, HOW_TO_GET)
    try:
        found = scan(root)
        channels = channels_of(found)
    except LearngeneError as err:
        return DatasetInfo("imagefolder", DESCRIPTION, None, None, (32, 32), 3, False, err.parts, HOW_TO_GET)
    images = sum(len(files) for files in found.values())
    return DatasetInfo("imagefolder", DESCRIPTION, len(found), images, (32, 32), channels, True, (), HOW_TO_GET)
