"""CIFAR-100 from its official Python files, read with a restricted unpickler, plus the paper's class division.

Accepts the extracted `cifar-100-python/` folder (train, test, meta) or the tarball, under the data root
or root/cifar100; downloads the tarball only when asked. Train and test are merged: within each class
the first 500 images are the official training images and the last 100 the official test images.
"""

from __future__ import annotations

import http.client
import shutil
import tarfile
import urllib.request
import zlib
from pathlib import Path

import numpy as np
import torch

from core.atomic import atomic_path
from core.data.datasets import DatasetInfo
from core.data.image_io import resize_batch
from core.data.imageset import ImageSet
from core.data.safe_pickle import text, unpickle
from core.digest import file_digest
from core.errors import Action, LearngeneError, Message, Part

URL = "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"
TARBALL = "cifar-100-python.tar.gz"
TARBALL_MD5 = "eb9058c3a382ffc7106e4002c42a8d85"
FOLDER = "cifar-100-python"
FILES = ("train", "test", "meta")
TRAIN_PER_CLASS = 500
DESCRIPTION = (
    "60,000 colour photos in 100 classes, 600 each (500 train + 100 test, merged); "
    "the paper's 64/16/20 division (the CIFAR-FS split) is built in"
)
HOW_TO_GET: Message = (
    Action("download", TARBALL),
    " (about 170 MB) into ",
    Action("data_folder", "cifar100"),
    f", or put that file or its extracted {FOLDER}/ folder there yourself; then ",
    Action("data_root"),
)

FINE_LABEL_NAMES = (
    "apple",
    "aquarium_fish",
    "baby",
    "bear",
    "beaver",
    "bed",
    "bee",
    "beetle",
    "bicycle",
    "bottle",
    "bowl",
    "boy",
    "bridge",
    "bus",
    "butterfly",
    "camel",
    "can",
    "castle",
    "caterpillar",
    "cattle",
    "chair",
    "chimpanzee",
    "clock",
    "cloud",
    "cockroach",
    "couch",
    "crab",
    "crocodile",
    "cup",
    "dinosaur",
    "dolphin",
    "elephant",
    "flatfish",
    "forest",
    "fox",
    "girl",
    "hamster",
    "house",
    "kangaroo",
    "keyboard",
    "lamp",
    "lawn_mower",
    "leopard",
    "lion",
    "lizard",
    "lobster",
    "man",
    "maple_tree",
    "motorcycle",
    "mountain",
    "mouse",
    "mushroom",
    "oak_tree",
    "orange",
    "orchid",
    "otter",
    "palm_tree",
    "pear",
    "pickup_truck",
    "pine_tree",
    "plain",
    "plate",
    "poppy",
    "porcupine",
    "possum",
    "rabbit",
    "raccoon",
    "ray",
    "road",
    "rocket",
    "rose",
    "sea",
    "seal",
    "shark",
    "shrew",
    "skunk",
    "skyscraper",
    "snail",
    "snake",
    "spider",
    "squirrel",
    "streetcar",
    "sunflower",
    "sweet_pepper",
    "table",
    "tank",
    "telephone",
    "television",
    "tiger",
    "tractor",
    "train",
    "trout",
    "tulip",
    "turtle",
    "wardrobe",
    "whale",
    "willow_tree",
    "wolf",
    "woman",
    "worm",
)
_OPEN_WORLD = (
    "beetle",
    "beaver",
    "butterfly",
    "camel",
    "cattle",
    "crab",
    "crocodile",
    "flatfish",
    "lamp",
    "maple_tree",
    "motorcycle",
    "otter",
    "sea",
    "shark",
    "television",
    "tractor",
)
_NOVEL = (
    "baby",
    "bed",
    "bicycle",
    "chimpanzee",
    "fox",
    "leopard",
    "man",
    "pickup_truck",
    "plain",
    "poppy",
    "rocket",
    "rose",
    "snail",
    "sweet_pepper",
    "table",
    "telephone",
    "wardrobe",
    "whale",
    "woman",
    "worm",
)
# The paper's division (its appendix tables, which coincide with CIFAR-FS): base = every other class.
PAPER_DIVISION: dict[str, list[str]] = {
    "base": [n for n in FINE_LABEL_NAMES if n not in _OPEN_WORLD + _NOVEL],
    "open_world": sorted(_OPEN_WORLD),
    "novel": sorted(_NOVEL),
}


_ARCHIVE_ERRORS = (tarfile.TarError, OSError, EOFError, zlib.error)


def paper_division(class_names: list[str]) -> dict[str, list[int]]:
    """The paper's base / open-world / novel pools as sorted class indices into `class_names`."""
    index = {name: i for i, name in enumerate(class_names)}
    missing = [n for pool in PAPER_DIVISION.values() for n in pool if n not in index]
    if missing:
        raise LearngeneError(
            f"the paper's CIFAR-100 division needs classes that are missing ({', '.join(missing[:5])}"
            f"{', ...' if len(missing) > 5 else ''}): load the real cifar100 dataset, whose meta file names all 100"
        )
    return {pool: sorted(index[n] for n in names) for pool, names in PAPER_DIVISION.items()}


def locate(root: Path) -> Path | None:
    """The complete extracted folder, else the tarball, under root or root/cifar100."""
    try:
        for base in (root, root / "cifar100"):
            if all((base / FOLDER / f).is_file() for f in FILES):
                return base / FOLDER
            if (base / TARBALL).is_file():
                return base / TARBALL
    except OSError as err:
        raise LearngeneError(
            f"cannot read {root} ({err}): check the folder's permissions or ", Action("other_root")
        ) from err
    return None


def _missing(root: Path) -> str:
    """Why nothing usable is under root: an incomplete folder, or nothing at all."""
    for base in (root, root / "cifar100"):
        if (base / FOLDER).is_dir():
            lacking = ", ".join(f for f in FILES if not (base / FOLDER / f).is_file())
            return f"{base / FOLDER} is incomplete (missing {lacking})"
    return f"cifar100 not found under {root} (looked for {FOLDER}/ and {TARBALL} in {root} and {root}/cifar100)"


def fetch(url: str, dest: Path) -> None:
    """Stream `url` into `dest`; the only place that touches the network."""
    with urllib.request.urlopen(url, timeout=60) as response, open(dest, "wb") as out:
        shutil.copyfileobj(response, out, 1 << 20)


def download_tarball(root: Path) -> Path:
    """Download the tarball into root/cifar100, keeping it only if its md5 is right."""
    target = root / "cifar100" / TARBALL
    try:
        with atomic_path(target) as tmp:
            fetch(URL, tmp)
            digest = file_digest(tmp, "md5")
            if digest != TARBALL_MD5:
                raise LearngeneError(
                    f"the download of {URL} is damaged (md5 {digest}, expected {TARBALL_MD5}): ", Action("redownload")
                )
    except (OSError, http.client.HTTPException) as err:
        raise LearngeneError(
            f"could not download {URL} ({err}): check the internet connection, or fetch it by hand into {target.parent}"
        ) from err
    return target


def _read_files(source: Path) -> dict[str, dict[str, object]]:
    """train, test and meta from the extracted folder, or streamed from the tarball after an md5 check."""
    try:
        if source.is_dir():
            files = {}
            for name in FILES:
                with open(source / name, "rb") as handle:
                    files[name] = unpickle(handle, str(source / name))
            return files
        digest = file_digest(source, "md5")
        if digest != TARBALL_MD5:
            raise LearngeneError(
                f"{source} is damaged (md5 {digest}, expected {TARBALL_MD5}): delete it and ", Action("redownload")
            )
        files = {}
        with tarfile.open(source, "r:gz") as archive:
            for member in archive:  # in archive order, so the gzip stream is never rewound
                name = member.name.removeprefix(f"{FOLDER}/")
                handle = archive.extractfile(member) if name in FILES and member.isfile() else None
                if handle is not None:
                    files[name] = unpickle(handle, f"{source}:{member.name}")
    except _ARCHIVE_ERRORS as err:
        raise LearngeneError(f"cannot read {source} ({err}): delete it and ", Action("fresh_copy")) from err
    lacking = [f for f in FILES if f not in files]
    if lacking:
        raise LearngeneError(f"{source} lacks {', '.join(lacking)}: delete it and ", Action("redownload"))
    return files


def _split(content: dict[str, object], name: str, classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Checked (N, 3, 32, 32) images and (N,) fine labels of one split."""
    data, labels = content.get("data"), content.get("fine_labels")
    shaped = isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 2 and data.shape[1] == 3072
    listed = isinstance(labels, list) and all(type(label) is int for label in labels)
    if not shaped or not listed or len(labels) != data.shape[0]:
        raise LearngeneError(
            f"{name} is not a CIFAR-100 split (bad data or fine_labels): delete it and get a fresh copy"
        )
    if labels and (min(labels) < 0 or max(labels) >= classes):
        raise LearngeneError(f"{name} has labels outside its {classes} classes: delete it and get a fresh copy")
    return data.reshape(-1, 3, 32, 32), np.array(labels, dtype=np.int64)


def _class_names(meta: dict[str, object], name: str) -> tuple[str, ...]:
    names = meta.get("fine_label_names")
    names = tuple(text(n) for n in names) if isinstance(names, list) else ()
    if not names or not all(isinstance(n, str) for n in names) or len(set(names)) != len(names):
        raise LearngeneError(f"{name} lacks distinct fine_label_names: delete it and get a fresh copy")
    return names


def load(root: Path | None, *, image_size: int = 32, seed: int = 0, download: bool = False) -> ImageSet:
    """All 60,000 images (train then test within each class), resized if asked; order is fixed, so `seed` is unused."""
    if root is None:
        raise LearngeneError("cifar100 needs a data root: ", *HOW_TO_GET)
    source = locate(root)
    if source is None and download:
        source = download_tarball(root)
    if source is None:
        raise LearngeneError(f"{_missing(root)}: ", *HOW_TO_GET)
    files = _read_files(source)
    names = _class_names(files["meta"], f"{source} (meta)")
    train = _split(files["train"], f"{source} (train)", len(names))
    test = _split(files["test"], f"{source} (test)", len(names))
    images = resize_batch(np.concatenate([train[0], test[0]]), image_size)
    labels = np.concatenate([train[1], test[1]])
    return ImageSet("cifar100", torch.from_numpy(images), torch.from_numpy(labels), names)


def info(root: Path | None) -> DatasetInfo:
    """Describe CIFAR-100 from what is on disk (nothing is read or hashed)."""

    def described(available: bool, *reason: Part) -> DatasetInfo:
        counts = (100, 60000) if available else (None, None)
        return DatasetInfo("cifar100", DESCRIPTION, *counts, (32, 32), 3, available, reason, HOW_TO_GET)

    if root is None:
        return described(False, "no data root: ", Action("no_data_root"))
    try:
        found = locate(root)
    except LearngeneError as err:
        return described(False, *err.parts)
    return described(True) if found else described(False, _missing(root))
