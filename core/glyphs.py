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
import importlib.util
import json
import math
import os
import string
import unicodedata
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont, features

from core.atomic import atomic_path, write_json
from core.datasets import DatasetInfo
from core.errors import LearngeneError
from core.imageset import ImageSet

VERSION = 1
SAMPLES_PER_CLASS = 20
MIN_FACES = 12
MAX_CLASSES = 500
CACHE_ENV = "LEARNGENE_CACHE"
HOW_TO_GET = "built in: rendered from fonts shipped with matplotlib and Hershey-Fonts"

_CLASS_CATEGORIES = ("Lu", "Ll", "Lo", "Nd")
_SUPERSAMPLE = 2
_CAP_FRACTION = 0.5  # a capital letter's height, as a fraction of the image, before random scaling
_MAX_HALF_EXTENT = 0.47  # glyphs are shrunk, never cropped, to stay inside this half-width of the image
_MAX_SHIFT = 0.08  # largest random move of the glyph's centre, as a fraction of the image
_REFERENCE_SIZE = 32
_SAME_DRAWING = 0.02  # difference (see _difference) below which two renderings count as one drawing
_HOMOGLYPH_FACES = ("DejaVuSans", "DejaVuSerif", "STIXGeneral")  # if one draws two characters alike, keep one
_CAP_PROBES = ("H", "Η", "Н")  # Latin, Greek and Cyrillic capitals of the same height

_LATIN = string.digits + string.ascii_uppercase + string.ascii_lowercase


def _cased(keys: str, capitals: str) -> dict[str, str]:
    """Character -> Hershey key, for capitals under `keys` and their small letters under lower-case keys."""
    pairs = dict(zip(capitals, keys))
    pairs.update(zip(capitals.lower(), keys.lower()))
    return pairs


_IDENTITY = {c: c for c in _LATIN}
_DIGITS = {c: c for c in string.digits}
# Hershey's Greek and Cyrillic fonts sit on ASCII code points; these tables say which letter each holds.
_GREEK_SYMBOL_ORDER = _cased("ABCDEFGHIKLMNOPQRSTUWXYZ", "ΑΒΧΔΕΦΓΗΙΚΛΜΝΟΠΘΡΣΤΥΩΞΨΖ") | _DIGITS
_GREEK_ALPHABETICAL = _cased("ABCDEFGHIJKLMNOPQRSTUVWX", "ΑΒΓΔΕΖΗΘΙΚΛΜΝΞΟΠΡΣΤΥΦΧΨΩ") | _DIGITS
_CYRILLIC_ALPHABETICAL = _cased(string.ascii_uppercase, "АБВГДЕЖЗИЙКЛМНОПРСТУФХЦЧШЩ") | _DIGITS
_CYRILLIC_PHONETIC = (
    dict(zip("АБЭДФГЖИЧКЛМНОПШРСТЮВЩХУЗЫЕЪЯЬЦ", "ABCDFGHIJKLMNOPQRSTUVWXYZ$[]^_`"))
    # its 'c' repeats the capital Э, so small э is left out
    | dict(zip("абдйфгжичклмнопшрстювщхузцыеъяь", "abdefghijklmnopqrstuvwxyz%&{|}~"))
    | _DIGITS
)
# Fonts that merely repeat another one's strokes (rowmans, mathupp, scripts, ...) are left out.
_HERSHEY_FONTS = {
    "futural": _IDENTITY,
    "futuram": _IDENTITY,
    "cursive": _IDENTITY,
    "scriptc": _IDENTITY,
    "gothgbt": _IDENTITY,
    "gothgrt": {c: k for c, k in _IDENTITY.items() if c != "s"},  # its 's' is a long s
    "gothicita": _IDENTITY,
    "rowmant": _IDENTITY,
    "timesi": _IDENTITY,
    "timesib": _IDENTITY,
    "timesr": _IDENTITY,
    "greek": _GREEK_SYMBOL_ORDER,
    "timesg": _GREEK_SYMBOL_ORDER,
    "greekc": _GREEK_ALPHABETICAL,
    "greeks": _GREEK_ALPHABETICAL,
    "cyrillic": _CYRILLIC_PHONETIC,
    "cyrilc_1": _CYRILLIC_ALPHABETICAL,
}


@dataclass(frozen=True)
class Face:
    """One typeface: a TrueType file or a Hershey font, and the characters it really draws."""

    name: str
    source: str
    hershey: bool
    chars: dict[str, str]  # character -> what to ask the font for (code point or Hershey key)


@dataclass(frozen=True)
class Pose:
    """Random variation of one sample; every field is a draw from [0, 1)."""

    angle: float = 0.5
    shear: float = 0.5
    scale: float = 0.5
    aspect: float = 0.5
    shift_x: float = 0.5
    shift_y: float = 0.5
    thickness: float = 0.35


def _font_folder() -> Path:
    spec = importlib.util.find_spec("matplotlib")
    if spec is None or spec.origin is None:
        raise LearngeneError("glyphs needs matplotlib's fonts: run `pip install matplotlib`")
    return Path(spec.origin).parent / "mpl-data" / "fonts" / "ttf"


def _is_class_char(char: str) -> bool:
    """A letter or decimal digit that is its own compatibility form (no superscripts, ligatures, ...)."""
    return unicodedata.category(char) in _CLASS_CATEGORIES and unicodedata.normalize("NFKC", char) == char


def _ttf_chars(path: Path) -> dict[str, str]:
    from fontTools import agl
    from fontTools.ttLib import TTFont

    cmap = TTFont(path, lazy=True).getBestCmap() or {}
    if not path.name.startswith("cm"):
        return {chr(code): chr(code) for code in cmap if _is_class_char(chr(code))}
    # The BaKoMa Computer Modern fonts put TeX's encoding on ASCII code points: trust the glyph names.
    chars: dict[str, str] = {}
    for code, glyph in sorted(cmap.items()):
        char = agl.toUnicode(glyph)
        if len(char) == 1 and _is_class_char(char):
            chars.setdefault(char, chr(code))
    return chars


def _truetype_files(folder: Path) -> list[Path]:
    """The TrueType fonts the dataset may draw from, in name order."""
    return [p for p in sorted(folder.glob("*.ttf")) if not p.name.startswith("LastResort")]  # LastResort draws placeholder boxes


@functools.lru_cache(maxsize=1)
def faces() -> tuple[Face, ...]:
    """Every typeface the dataset draws from, TrueType first, with the class characters each one has."""
    folder = _font_folder()
    if not folder.is_dir():
        raise LearngeneError(
            f"matplotlib's fonts are missing from {folder}: reinstall it with `pip install --force-reinstall matplotlib`"
        )
    found = []
    for path in _truetype_files(folder):
        chars = _ttf_chars(path)
        if chars:
            found.append(Face(path.stem, str(path), False, chars))
    for font, mapping in _HERSHEY_FONTS.items():
        glyphs = _hershey_glyphs(font)
        chars = {c: k for c, k in mapping.items() if k in glyphs and glyphs[k].strokes}
        found.append(Face(f"Hershey-{font}", font, True, chars))
    return tuple(found)


@functools.lru_cache(maxsize=None)
def _hershey_glyphs(font: str) -> dict:
    try:
        from HersheyFonts import HersheyFonts
    except ImportError as err:
        raise LearngeneError("glyphs needs the Hershey stroke fonts: run `pip install Hershey-Fonts`") from err
    loader = HersheyFonts()
    loader.load_default_font(font)
    return loader.all_glyphs


@functools.lru_cache(maxsize=None)
def _truetype(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size)


@functools.lru_cache(maxsize=None)
def _cap_height(face_index: int) -> float:
    """Height of a capital letter, per pixel of font size (TrueType) or in font units (Hershey)."""
    face = faces()[face_index]
    probe = next((face.chars[c] for c in _CAP_PROBES if c in face.chars), None)
    if face.hershey:
        if probe is None:
            return 21.0  # Hershey's usual distance from cap line to base line
        ys = [y for stroke in _hershey_glyphs(face.source)[probe].strokes for _, y in stroke]
        return float(max(ys) - min(ys))
    if probe is None:
        return 0.7
    _, top, _, bottom = _truetype(face.source, 200).getbbox(probe, anchor="ls")
    return (bottom - top) / 200


def _affine(pose: Pose, canvas: int, half_w: float, half_h: float) -> tuple[np.ndarray, np.ndarray]:
    """The pose as a 2x2 matrix and an output centre, shrunk and clamped so the glyph stays inside."""
    angle = math.radians((pose.angle * 2 - 1) * 10)
    shear = (pose.shear * 2 - 1) * 0.15
    scale = 0.88 + 0.24 * pose.scale
    aspect = (pose.aspect * 2 - 1) * 0.08
    rotate = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    matrix = rotate @ np.array([[1.0, shear], [0.0, 1.0]]) @ np.diag([scale * (1 + aspect), scale * (1 - aspect)])
    corners = matrix @ np.array([[-half_w, half_w, half_w, -half_w], [-half_h, -half_h, half_h, half_h]])
    extent = np.abs(corners).max(axis=1)
    limit = _MAX_HALF_EXTENT * canvas
    shrink = min(1.0, limit / max(extent.max(), 1e-9))
    room = np.clip(limit - extent * shrink, 0, _MAX_SHIFT * canvas)
    matrix = matrix * shrink
    centre = canvas / 2 + room * (np.array([pose.shift_x, pose.shift_y]) * 2 - 1)
    return matrix, centre


def _draw_ttf(face_index: int, char: str, canvas: int, pose: Pose) -> Image.Image:
    face = faces()[face_index]
    font = _truetype(face.source, max(4, round(_CAP_FRACTION * canvas / _cap_height(face_index))))
    stroke = int(pose.thickness * 2 * canvas / 64)
    text = face.chars[char]
    left, top, right, bottom = font.getbbox(text, anchor="ls", stroke_width=stroke)
    ink = Image.new("L", (right - left + 2, bottom - top + 2))
    ImageDraw.Draw(ink).text(
        (1 - left, 1 - top), text, font=font, fill=255, anchor="ls", stroke_width=stroke, stroke_fill=255
    )
    box = ink.getbbox()
    if box is None:
        return Image.new("L", (canvas, canvas))
    ink = ink.crop(box)
    matrix, centre = _affine(pose, canvas, ink.width / 2, ink.height / 2)
    inverse = np.linalg.inv(matrix)
    offset = np.array([ink.width / 2, ink.height / 2]) - inverse @ centre
    coefficients = (inverse[0, 0], inverse[0, 1], offset[0], inverse[1, 0], inverse[1, 1], offset[1])
    return ink.transform((canvas, canvas), Image.Transform.AFFINE, coefficients, resample=Image.Resampling.BILINEAR)


def _draw_hershey(face_index: int, char: str, canvas: int, pose: Pose) -> Image.Image:
    face = faces()[face_index]
    strokes = [np.array(s, dtype=float) for s in _hershey_glyphs(face.source)[face.chars[char]].strokes]
    points = np.concatenate(strokes)
    low, high = points.min(axis=0), points.max(axis=0)
    unit = _CAP_FRACTION * canvas / _cap_height(face_index)
    matrix, centre = _affine(pose, canvas, (high[0] - low[0]) * unit / 2, (high[1] - low[1]) * unit / 2)
    width = (2.0 + 2.5 * pose.thickness) * canvas / 64
    image = Image.new("L", (canvas, canvas))
    draw = ImageDraw.Draw(image)
    for stroke in strokes:
        xy = ((stroke - (low + high) / 2) * unit) @ matrix.T + centre
        draw.line([tuple(p) for p in xy], fill=255, width=max(1, round(width)), joint="curve")
        for x, y in (xy[0], xy[-1]):
            draw.ellipse((x - width / 2, y - width / 2, x + width / 2, y + width / 2), fill=255)
    return image


def render(face_index: int, char: str, image_size: int, pose: Pose = Pose()) -> np.ndarray:
    """One character in one face as a (image_size, image_size) uint8 array, bright ink on black."""
    draw = _draw_hershey if faces()[face_index].hershey else _draw_ttf
    return np.asarray(draw(face_index, char, image_size * _SUPERSAMPLE, pose).reduce(_SUPERSAMPLE), dtype=np.uint8)


def _fingerprint() -> str:
    """Short hash of everything that shapes the pixels: this generator, the fonts, Pillow and FreeType."""
    parts = [str(VERSION), Image.__version__, str(features.version("freetype2"))]
    try:
        parts.append(importlib.metadata.version("Hershey-Fonts"))
    except importlib.metadata.PackageNotFoundError:
        parts.append("?")
    folder = _font_folder()
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


def _face_names() -> set[str]:
    """Names of the installed faces, read from file names only (opening every font costs seconds)."""
    names = {p.stem for p in _truetype_files(_font_folder())}
    return names | {f"Hershey-{font}" for font in _HERSHEY_FONTS}


def _read_catalogue(path: Path) -> dict[str, list[str]] | None:
    """A saved catalogue whose shape and face names are right; whether the faces draw it is checked before rendering."""
    try:
        catalogue = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    known = _face_names()
    valid = isinstance(catalogue, dict) and len(catalogue) > 0 and all(
        isinstance(c, str) and len(c) == 1 and isinstance(names, list) and len(set(names)) >= MIN_FACES
        and all(isinstance(n, str) and n in known for n in names)
        for c, names in catalogue.items()
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
        return DatasetInfo("glyphs", description, None, None, (32, 32), 1, False, str(err), HOW_TO_GET)
    face_count = len({f for names in catalogue.values() for f in names})
    description = (
        f"Latin, Greek and Cyrillic letters and digits drawn in {face_count} typefaces; "
        f"one class per character, each image in another face, slightly rotated, sheared, scaled and thickened"
    )
    classes = len(catalogue)
    return DatasetInfo("glyphs", description, classes, classes * SAMPLES_PER_CLASS, (32, 32), 1, True, "", HOW_TO_GET)
