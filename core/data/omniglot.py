"""Omniglot from a local copy: handwritten characters of many alphabets, one class per character.

Reads the original zips (images_background*.zip, images_evaluation*.zip) in place, or their
unpacked folders as torchvision lays them out (omniglot-py/images_background/<alphabet>/<character>/).
Strokes are inverted to bright ink on black, like the glyphs dataset.
"""

from __future__ import annotations

import contextlib
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path, PurePosixPath

import torch

from core.data.datasets import DatasetInfo
from core.data.image_io import decode_classes, read_capped
from core.data.imageset import ImageSet
from core.errors import Action, LearngeneError, Message, Part

PREFIXES = ("images_background", "images_evaluation")
SUBFOLDERS = (".", "omniglot", "omniglot-py", "omniglot/omniglot-py")
DESCRIPTION = "handwritten characters of many alphabets, each drawn by 20 people; one class per character"
HOW_TO_GET: Message = (
    "download images_background.zip and images_evaluation.zip from https://github.com/brendenlake/omniglot "
    "(folder python/) into ",
    Action("data_folder", "omniglot"),
    ", then ",
    Action("data_root"),
)
MAX_MEMBER_BYTES = 16 << 20  # an Omniglot image is about 1 KB; a member far larger is a zip bomb or not Omniglot
_ZIP_ERRORS = (zipfile.BadZipFile, OSError, EOFError, zlib.error, RuntimeError, NotImplementedError)

# class name ("Greek/character03") -> file name -> (folder or zip, path inside it)
Catalogue = dict[str, dict[str, tuple[Path, str]]]


def _sources(folder: Path) -> list[Path]:
    """Omniglot folders and zips directly inside `folder`, sorted by name."""
    if not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.iterdir()):
        if path.name.startswith(PREFIXES) and (path.is_dir() or (path.suffix.lower() == ".zip" and path.is_file())):
            found.append(path)
    return found


def locate(root: Path) -> list[Path]:
    """The Omniglot sources under root, root/omniglot or root/omniglot-py (the first place that has any)."""
    try:
        for sub in SUBFOLDERS:
            sources = _sources(root / sub)
            if sources:
                return sources
    except OSError as err:
        raise LearngeneError(
            f"cannot read {root} ({err}): check the folder's permissions or ", Action("other_root")
        ) from err
    return []


def _members(source: Path) -> list[str]:
    """Paths of the PNG files inside a zip or folder, relative to it."""
    if source.is_dir():  # regular files only: reading a FIFO or a device named *.png would block forever
        return [p.relative_to(source).as_posix() for p in source.glob("*/*/*.png") if p.is_file()]
    try:
        with zipfile.ZipFile(source) as archive:
            names = archive.namelist()
    except _ZIP_ERRORS as err:
        raise LearngeneError(f"omniglot archive {source} is corrupt ({err}): delete it and download it again") from err
    return [n for n in names if n.lower().endswith(".png") and not n.startswith("__MACOSX/")]


def catalogue(sources: list[Path]) -> Catalogue:
    """Every class and its images, sorted; a character present in several sources keeps each file once."""
    found: Catalogue = {}
    for source in sources:
        for member in _members(source):
            parts = PurePosixPath(member).parts
            if len(parts) >= 3:
                found.setdefault(f"{parts[-3]}/{parts[-2]}", {}).setdefault(parts[-1], (source, member))
    return {name: dict(sorted(files.items())) for name, files in sorted(found.items())}


def _not_found(root: Path) -> str:
    return f"omniglot not found under {root} (looked in {root}, {root}/omniglot and {root}/omniglot-py)"


def load(root: Path | None, *, image_size: int = 32, seed: int = 0, download: bool = False) -> ImageSet:
    """Decode every Omniglot image under `root` as bright strokes on black; order is sorted, so `seed` is unused."""
    if root is None:
        raise LearngeneError("omniglot needs a data root: ", *HOW_TO_GET)
    found = catalogue(locate(root))
    if not found:
        fix = "automatic download is not offered for omniglot; " if download else ""
        raise LearngeneError(f"{_not_found(root)}: {fix}", *HOW_TO_GET)
    sources = sorted({source for files in found.values() for source, _ in files.values()})
    current = None
    try:
        with contextlib.ExitStack() as stack:
            archives = {s: stack.enter_context(zipfile.ZipFile(s)) for s in sources if not s.is_dir()}

            def reader(source: Path, member: str) -> Callable[[], Path | bytes]:
                def read() -> Path | bytes:
                    nonlocal current
                    current = source
                    if source.is_dir():
                        return source / member
                    with archives[source].open(member) as handle:
                        return read_capped(handle, f"{source}/{member}", MAX_MEMBER_BYTES)

                return read

            classes = [[(f"{s}/{m}", reader(s, m)) for s, m in files.values()] for files in found.values()]
            images, labels = decode_classes(classes, image_size, 1)
    except _ZIP_ERRORS as err:
        where = current if current is not None else root
        raise LearngeneError(
            f"cannot read omniglot images from {where} ({err}): delete it and get a fresh copy"
        ) from err
    return ImageSet("omniglot", torch.from_numpy(255 - images), torch.from_numpy(labels), tuple(found))


def info(root: Path | None) -> DatasetInfo:
    """Describe the local Omniglot copy from its file listing (nothing is decoded)."""

    def unavailable(*reason: Part) -> DatasetInfo:
        return DatasetInfo("omniglot", DESCRIPTION, None, None, (32, 32), 1, False, reason, HOW_TO_GET)

    if root is None:
        return unavailable("no data root: ", Action("no_data_root"))
    try:
        found = catalogue(locate(root))
    except LearngeneError as err:
        return unavailable(*err.parts)
    if not found:
        return unavailable(_not_found(root))
    images = sum(len(files) for files in found.values())
    return DatasetInfo("omniglot", DESCRIPTION, len(found), images, (32, 32), 1, True, (), HOW_TO_GET)
