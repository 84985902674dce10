"""Typefaces for the glyphs dataset and how one character is drawn in one of them.

The faces are the TrueType families that ship with matplotlib and the Hershey stroke fonts of the Hershey-Fonts
package; each draw is slightly rotated, sheared, scaled, thickened and moved by a `Pose`.
"""

from __future__ import annotations

import functools
import importlib.util
import math
import string
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from core.errors import Action, LearngeneError

_CLASS_CATEGORIES = ("Lu", "Ll", "Lo", "Nd")
_SUPERSAMPLE = 2
_CAP_FRACTION = 0.5  # a capital letter's height, as a fraction of the image, before random scaling
_MAX_HALF_EXTENT = 0.47  # glyphs are shrunk, never cropped, to stay inside this half-width of the image
_MAX_SHIFT = 0.08  # largest random move of the glyph's centre, as a fraction of the image
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
HERSHEY_FONTS = {
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


def font_folder() -> Path:
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


def truetype_files(folder: Path) -> list[Path]:
    """The TrueType fonts the dataset may draw from, in name order."""
    return [
        p for p in sorted(folder.glob("*.ttf")) if not p.name.startswith("LastResort")
    ]  # LastResort draws placeholder boxes


@functools.lru_cache(maxsize=1)
def faces() -> tuple[Face, ...]:
    """Every typeface the dataset draws from, TrueType first, with the class characters each one has."""
    folder = font_folder()
    if not folder.is_dir():
        raise LearngeneError(f"matplotlib's fonts are missing from {folder}: ", Action("reinstall_fonts"))
    found = []
    for path in truetype_files(folder):
        chars = _ttf_chars(path)
        if chars:
            found.append(Face(path.stem, str(path), False, chars))
    for font, mapping in HERSHEY_FONTS.items():
        glyphs = _hershey_glyphs(font)
        chars = {c: k for c, k in mapping.items() if k in glyphs and glyphs[k].strokes}
        found.append(Face(f"Hershey-{font}", font, True, chars))
    return tuple(found)


@functools.cache
def _hershey_glyphs(font: str) -> dict:
    try:
        from HersheyFonts import HersheyFonts
    except ImportError as err:
        raise LearngeneError("glyphs needs the Hershey stroke fonts: run `pip install Hershey-Fonts`") from err
    loader = HersheyFonts()
    loader.load_default_font(font)
    return loader.all_glyphs


@functools.cache
def _truetype(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size)


@functools.cache
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


def face_names() -> set[str]:
    """Names of the installed faces, read from file names only (opening every font costs seconds)."""
    names = {p.stem for p in truetype_files(font_folder())}
    return names | {f"Hershey-{font}" for font in HERSHEY_FONTS}
