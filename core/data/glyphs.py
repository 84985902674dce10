"""The built-in `glyphs` dataset: letters and digits of several scripts, each drawn in many real typefaces.

One class is one character; its images are that character in different faces (the TrueType families
that ship with matplotlib and the Hershey stroke fonts of the Hershey-Fonts package), each slightly
rotated, sheared, scaled, thickened and moved. Everything is rendered offline, is fixed by the seed,
and is cached on disk so that only the first load pays for rendering.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import os
import unicodedata
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image, features

from core.atomic import atomic_path, write_json
from core.data.datasets import DatasetInfo
from core.data.fonts import Pose, face_names, faces, font_folder, render
from core.data.imageset import ImageSet
from core.errors import LearngeneError, Message

VERSION = 1
SAMPLES_PER_CLASS = 20
MIN_FACES = 12
MAX_CLASSES = 500
CACHE_ENV = "LEARNGENE_CACHE"
HOW_TO_GET: Message = ("built in: rendered from fonts shipped with matplotlib and Hershey-Fonts",)

_REFERENCE_SIZE = 32
_SAME_DRAWING = 0.02  # difference (see _difference) below which two renderings count as one drawing
_HOMOGLYPH_FACES = ("DejaVuSans", "DejaVuSerif", "STIXGeneral")  # if one draws two characters alike, keep one


def _fingerprint() -> str:
    """Short hash of everything that shapes the pixels: this generator, the fonts, Pillow and FreeType."""
    parts = [str(VERSION), Image.__version__, str(features.version("freetype2"))]
    try:
        parts.append(importlib.metadata.version("Hershey-Fonts"))
    except importlib.metadata.PackageNotFoundError:
        parts.append("?")
    folder = font_folder()
    if folder.is_dir():
        parts += [f"{p.name}:{p.stat().st_size}" for p in sorted(folder.glob("*.ttf"))]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:10]


def cache_dir() -> Path:
    """Where rendered data is kept: $LEARNGENE_CACHE, else $XDG_CACHE_HOME/learngene, else ~/.cache/learngene."""
    env = os.environ.get(CACHE_ENV, "")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "learngene"


def _difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Ink that differs between renderings, as a fraction of their combined ink (0 = identical)."""
    return np.abs(a - b).sum(axis=-1) / np.maximum(np.maximum(a, b).sum(axis=-1), 1e-9)


def _rank(holders: dict[str, list[int]]) -> Callable[[str], tuple[int, bool, int]]:
    """Sort key: more faces first, then letters without diacritics, then code point."""
    return lambda c: (-len(holders[c]), unicodedata.decomposition(c) != "", ord(c))


def _build_catalogue() -> dict[str, list[str]]:
    """Pick the classes: characters drawn by the most faces (unaccented first), minus look-alikes of earlier picks."""
    all_faces = faces()
    holders: dict[str, list[int]] = {}
    for index, face in enumerate(all_faces):
        for char in face.chars:
            holders.setdefault(char, []).append(index)
    ranked = sorted((c for c, held in holders.items() if len(held) >= MIN_FACES), key=_rank(holders))
    reference = [i for i, face in enumerate(all_faces) if face.name in _HOMOGLYPH_FACES]
    chosen: dict[str, list[int]] = {}
    signatures: list[np.ndarray] = []
    for char in ranked:
        bitmaps = {i: render(i, char, _REFERENCE_SIZE).astype(np.float32).ravel() / 255 for i in holders[char]}
        kept: list[int] = []
        for index, bitmap in bitmaps.items():
            if bitmap.max() > 0 and all(_difference(bitmap, bitmaps[k]) >= _SAME_DRAWING for k in kept):
                kept.append(index)
        if len(kept) < MIN_FACES:
            continue
        if all(r in bitmaps for r in reference):
            signature = np.stack([bitmaps[r] for r in reference])
            if signatures and _difference(np.stack(signatures), signature).min() < _SAME_DRAWING:
                continue
            signatures.append(signature)
        chosen[char] = kept
        if len(chosen) == MAX_CLASSES:
            break
    return {c: [all_faces[i].name for i in chosen[c]] for c in sorted(chosen, key=ord)}


def _catalogue_path() -> Path:
    return cache_dir() / f"glyphs-catalogue-v{VERSION}-{_fingerprint()}.json"


def _read_catalogue(path: Path) -> dict[str, list[str]] | None:
    """A saved catalogue whose shape and face names are right; whether the faces draw it is checked before rendering."""
    try:
        catalogue = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    known = face_names()
    valid = (
        isinstance(catalogue, dict)
        and len(catalogue) > 0
        and all(
            isinstance(c, str)
            and len(c) == 1
            and isinstance(names, list)
            and len(set(names)) >= MIN_FACES
            and all(isinstance(n, str) and n in known for n in names)
            for c, names in catalogue.items()
        )
    )
    return catalogue if valid else None


def _drop_undrawable_catalogue() -> None:
    """Before rendering: forget a saved catalogue naming a face that cannot draw its class, so it is rebuilt."""
    drawn = {face.name: face.chars for face in faces()}
    if not all(c in drawn.get(n, ()) for c, names in _catalogue().items() for n in names):
        _catalogue_path().unlink(missing_ok=True)
        _catalogue.cache_clear()


@functools.lru_cache(maxsize=1)
def _catalogue() -> dict[str, tuple[str, ...]]:
    path = _catalogue_path()
    catalogue = _read_catalogue(path)
    if catalogue is None:
        catalogue = _build_catalogue()
        try:
            write_json(path, catalogue)
        except OSError:
            pass  # an unwritable cache only costs a rebuild next time
    return {c: tuple(f) for c, f in sorted(catalogue.items(), key=lambda item: ord(item[0]))}


def glyph_catalogue() -> dict[str, list[str]]:
    """Each class's character -> the names of the distinct faces its images are drawn from."""
    return {c: list(f) for c, f in _catalogue().items()}


def class_name(char: str) -> str:
    """A class's display name, e.g. 'A (U+0041)'."""
    return f"{char} (U+{ord(char):04X})"


def sample_faces(seed: int = 0, samples_per_class: int = SAMPLES_PER_CLASS) -> list[tuple[str, str]]:
    """(character, face name) of every image, in dataset order: each class cycles through a shuffle of its faces."""
    return [(char, face) for char, face, _ in _plan(seed, samples_per_class)]


def _plan(seed: int, samples_per_class: int) -> list[tuple[str, str, Pose]]:
    rng = np.random.default_rng(seed)
    plan = []
    for char, names in _catalogue().items():
        order = rng.permutation(len(names))
        plan += [(char, names[order[i % len(names)]]) for i in range(samples_per_class)]
    draws = rng.random((len(plan), 7))
    return [(char, face, Pose(*map(float, row))) for (char, face), row in zip(plan, draws)]


def _generate(image_size: int, seed: int, samples_per_class: int) -> tuple[np.ndarray, np.ndarray]:
    index = {face.name: i for i, face in enumerate(faces())}
    position = {char: k for k, char in enumerate(_catalogue())}
    plan = _plan(seed, samples_per_class)
    images = np.empty((len(plan), 1, image_size, image_size), dtype=np.uint8)
    labels = np.empty(len(plan), dtype=np.int64)
    for n, (char, face, pose) in enumerate(plan):
        images[n, 0] = render(index[face], char, image_size, pose)
        labels[n] = position[char]
    return images, labels


def _dataset_path(image_size: int, seed: int, samples_per_class: int) -> Path:
    return cache_dir() / f"glyphs-v{VERSION}-{_fingerprint()}-seed{seed}-{image_size}px-{samples_per_class}each.npz"


def _read_cached(path: Path, shape: tuple[int, ...], names: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray] | None:
    """The cached arrays if the file is whole and matches what was asked for, else None."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            images, labels, stored = data["images"], data["labels"], tuple(data["class_names"].tolist())
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    whole = images.dtype == np.uint8 and images.shape == shape and labels.dtype == np.int64
    whole = whole and labels.shape == shape[:1] and stored == names
    if not whole or labels.min(initial=0) < 0 or labels.max(initial=0) >= len(names):
        return None
    return images, labels


def _write_cached(path: Path, images: np.ndarray, labels: np.ndarray, names: tuple[str, ...]) -> None:
    try:
        with atomic_path(path) as tmp, open(tmp, "wb") as handle:
            np.savez_compressed(handle, images=images, labels=labels, class_names=np.array(names))
    except OSError:
        pass  # an unwritable cache only costs a re-render next time


def load(
    root: Path | None = None,
    *,
    image_size: int = 32,
    seed: int = 0,
    download: bool = False,
    samples_per_class: int = SAMPLES_PER_CLASS,
) -> ImageSet:
    """Render (or read from the cache) the glyphs dataset; `root` and `download` are not needed."""
    if samples_per_class < 1:
        raise LearngeneError(f"samples per class must be at least 1, not {samples_per_class}")
    names = tuple(class_name(c) for c in _catalogue())
    path = _dataset_path(image_size, seed, samples_per_class)
    shape = (len(names) * samples_per_class, 1, image_size, image_size)
    cached = _read_cached(path, shape, names)
    if cached is None:
        _drop_undrawable_catalogue()
        names = tuple(class_name(c) for c in _catalogue())
        cached = _generate(image_size, seed, samples_per_class)
        _write_cached(path, *cached, names)
    images, labels = cached
    return ImageSet("glyphs", torch.from_numpy(images), torch.from_numpy(labels), names)


def info(root: Path | None = None) -> DatasetInfo:
    """Describe the glyphs dataset from its catalogue (no full rendering needed)."""
    try:
        catalogue = _catalogue()
    except LearngeneError as err:
        description = "letters and digits rendered from real typefaces"
        return DatasetInfo("glyphs", description, None, None, (32, 32), 1, False, err.parts, HOW_TO_GET)
    face_count = len({f for names in catalogue.values() for f in names})
    description = (
        f"Latin, Greek and Cyrillic letters and digits drawn in {face_count} typefaces; "
        f"one class per character, each image in another face, slightly rotated, sheared, scaled and thickened"
    )
    classes = len(catalogue)
    return DatasetInfo("glyphs", description, classes, classes * SAMPLES_PER_CLASS, (32, 32), 1, True, (), HOW_TO_GET)
