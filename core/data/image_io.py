"""Decode image files into square uint8 arrays, turning every decoding failure into a LearngeneError."""

from __future__ import annotations

import io
import warnings
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps

from core.errors import LearngeneError
from core.names import shown

_GRAY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"})
_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
_WIDE_MODES = frozenset({"I", "I;16", "I;16B", "I;16L", "I;16N"})
_LUMA = (19595, 38470, 7471)  # ITU-R 601 weights times 65536, as Pillow's RGB-to-L conversion
# Decoding an image takes about 20 bytes per pixel at its peak (RGBA with conversions): 25 MP stay near 0.5 GB.
MAX_PIXELS = 25_000_000
MAX_FILE_BYTES = 128 << 20
# What Pillow raises on broken or hostile files: truncated data, bad headers, decompression bombs.
_DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, zlib.error, Image.DecompressionBombError)


def _open(source: Path | bytes) -> Image.Image:
    """Open without decoding; Pillow's decompression-bomb warning is silenced, as check_pixels refuses in one line."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        return Image.open(io.BytesIO(source) if isinstance(source, bytes) else source)


def _unreadable(name: str, err: Exception) -> LearngeneError:
    return LearngeneError(f"cannot read image {shown(name)} ({shown(str(err))}): replace or delete that file")


def is_grayscale_file(path: Path) -> bool:
    """Whether the file stores one gray channel (or a palette of grays); reads only its header."""
    try:
        with _open(path) as image:
            if image.mode != "P":
                return image.mode in _GRAY_MODES
            palette = image.getpalette() or []
    except _DECODE_ERRORS as err:
        raise _unreadable(str(path), err) from err
    return all(palette[i] == palette[i + 1] == palette[i + 2] for i in range(0, len(palette) - 2, 3))


def _eight_bit(image: Image.Image) -> Image.Image:
    """A 16- or 32-bit gray image scaled to 8-bit "L" (or "LA" with its transparent value), not clipped at 255.

    Pillow's own conversion clips every value above 255, so a 16-bit scan would turn almost white. Mode "I" is
    read as 16-bit, the depth that PNG, TIFF and PGM files opened in that mode hold.
    """
    if image.mode not in _WIDE_MODES:
        return image
    wide = np.asarray(image).astype(np.int64)
    gray = Image.fromarray(((np.clip(wide, 0, 65535) + 128) // 257).astype(np.uint8))
    transparent = image.info.get("transparency")
    if isinstance(transparent, int):
        alpha = Image.fromarray(np.where(wide == transparent, 0, 255).astype(np.uint8))
        return Image.merge("LA", (gray, alpha))
    return gray


def _flatten(image: Image.Image) -> Image.Image:
    """Composite a transparent image over white, as image viewers show it."""
    if image.mode in _ALPHA_MODES or "transparency" in image.info:
        rgba = image.convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    return image


def check_pixels(image: Image.Image, name: str) -> None:
    """Refuse, before decoding, an image larger than MAX_PIXELS: its decoding alone would take gigabytes."""
    width, height = image.size
    if width * height > MAX_PIXELS:
        raise LearngeneError(
            f"image {shown(name)} is {width}x{height} pixels, more than the {MAX_PIXELS / 1e6:g} megapixels this "
            "program decodes: shrink it (every image is resized to at most 256 pixels anyway) or remove it"
        )


def read_capped(handle: BinaryIO, name: str, limit: int = MAX_FILE_BYTES) -> bytes:
    """At most `limit` bytes of an image file (or archive member), refusing a larger one by name."""
    data = handle.read(limit + 1)
    if len(data) > limit:
        raise LearngeneError(
            f"image {shown(name)} holds more than {limit >> 20} MiB, more than any image this program decodes: "
            "remove it"
        )
    return data


def decode_square(source: Path | bytes, name: str, size: int, channels: int) -> np.ndarray:
    """The image's centre square resized to size x size, as (channels, size, size) uint8 (1 = gray, 3 = RGB).

    16-bit gray is scaled to 8 bits, palette and CMYK images go through Pillow's colour conversion, transparent
    pixels are composited over white, and colour becomes gray by ITU-R 601 luma (as Pillow's "L").
    """
    try:
        with _open(source) as image:
            check_pixels(image, name)
            image.load()
            upright = _flatten(_eight_bit(ImageOps.exif_transpose(image)))
            converted = upright.convert("L" if channels == 1 else "RGB")
    except _DECODE_ERRORS as err:
        raise _unreadable(name, err) from err
    width, height = converted.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    square = converted.crop((left, top, left + side, top + side))  # cropped first, so no pixel outside it bleeds in
    array = np.asarray(square.resize((size, size), Image.Resampling.LANCZOS), dtype=np.uint8)
    return array[None] if channels == 1 else array.transpose(2, 0, 1)


ImageSource = Callable[[], "Path | bytes"]


def decode_classes(
    classes: Sequence[Sequence[tuple[str, ImageSource]]], size: int, channels: int
) -> tuple[np.ndarray, np.ndarray]:
    """Decode every (name, source) image of every class into (N, C, size, size) uint8 and labels 0..K-1.

    Each source is read only when its image is decoded, so one encoded image is in memory at a time.
    """
    count = sum(len(members) for members in classes)
    images = np.empty((count, channels, size, size), dtype=np.uint8)
    labels = np.empty(count, dtype=np.int64)
    n = 0
    for label, members in enumerate(classes):
        for name, read in members:
            images[n] = decode_square(read(), name, size, channels)
            labels[n] = label
            n += 1
    return images, labels


def resize_batch(images: np.ndarray, size: int) -> np.ndarray:
    """Resize square (N, C, H, W) uint8 images to (N, C, size, size) with Lanczos filtering."""
    if images.shape[2:] == (size, size):
        return images
    gray = images.shape[1] == 1
    out = np.empty((images.shape[0], images.shape[1], size, size), dtype=np.uint8)
    for n, image in enumerate(images):
        pixels = np.ascontiguousarray(image[0] if gray else image.transpose(1, 2, 0))
        resized = np.asarray(Image.fromarray(pixels).resize((size, size), Image.Resampling.LANCZOS))
        out[n] = resized[None] if gray else resized.transpose(2, 0, 1)
    return out


def convert_channels(images: np.ndarray, channels: int) -> np.ndarray:
    """(N, C, H, W) uint8 images with `channels` channels: gray repeated into RGB, or RGB to gray by ITU-R 601 luma."""
    have = images.shape[1]
    if have == channels:
        return images
    if have == 1 and channels == 3:
        return np.repeat(images, 3, axis=1)
    if have == 3 and channels == 1:
        weights = np.array(_LUMA, dtype=np.uint32).reshape(1, 3, 1, 1)  # Pillow's fixed-point weights, same rounding
        luma = ((images.astype(np.uint32) * weights).sum(axis=1, keepdims=True) + 0x8000) >> 16
        return luma.astype(np.uint8)
    raise LearngeneError(f"cannot convert images with {have} channels to {channels}: use gray or RGB images")
