"""Image conversion: 16-bit, palette, CMYK and alpha images decode to the right 8-bit pixel values; channels convert."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from core.data.image_io import convert_channels, decode_square


def encoded(image: Image.Image, fmt: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def raw_png(width: int, height: int, depth: int, colour: int, rows: list[bytes]) -> bytes:
    """A PNG written by hand, for the layouts Pillow does not save (16-bit RGB)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    data = zlib.compress(b"".join(b"\0" + row for row in rows))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def decode(data: bytes, channels: int, size: int = 4) -> np.ndarray:
    return decode_square(data, "test image", size, channels)


def test_a_16_bit_gray_png_is_scaled_to_8_bits_instead_of_clipping_to_white():
    wide = np.array([[0, 257 * 64], [257 * 128, 65535]], dtype=np.uint16).repeat(2, 0).repeat(2, 1)
    data = encoded(Image.fromarray(wide))
    assert Image.open(io.BytesIO(data)).mode == "I;16"
    gray = decode(data, 1)[0]
    assert gray[::2, ::2].tolist() == [[0, 64], [128, 255]]
    assert decode(data, 3)[:, 2, 0].tolist() == [128, 128, 128]


def test_a_16_bit_gray_png_with_a_transparent_value_shows_white_there():
    wide = np.full((4, 4), 257 * 50, dtype=np.uint16)
    wide[:2] = 1000
    gray = decode(encoded(Image.fromarray(wide), transparency=1000), 1)[0]
    assert gray[:2].tolist() == [[255] * 4] * 2 and gray[2:].tolist() == [[50] * 4] * 2


def test_a_32_bit_integer_image_is_read_as_16_bit():
    data = encoded(Image.fromarray(np.full((4, 4), 257 * 200, dtype=np.int32)), "TIFF")
    assert Image.open(io.BytesIO(data)).mode == "I"
    assert decode(data, 1)[0, 1, 1] == 200


def test_a_16_bit_rgb_png_keeps_its_colours():
    rows = [struct.pack(">HHH", 65535, 32896, 0) * 4] * 4
    assert decode(raw_png(4, 4, 16, 2, rows), 3)[:, 1, 1].tolist() == [255, 128, 0]


def test_a_palette_png_decodes_to_its_colours_and_to_gray_by_luma():
    image = Image.new("P", (4, 4), 1)
    image.putpalette([0, 0, 0, 200, 40, 10])
    image.putpixel((0, 0), 0)
    data = encoded(image)
    assert decode(data, 3)[:, 2, 2].tolist() == [200, 40, 10]
    assert decode(data, 1)[0, 2, 2] == (200 * 19595 + 40 * 38470 + 10 * 7471 + 0x8000) >> 16
    assert decode(data, 1)[0, 0, 0] == 0


def test_a_palette_png_with_a_transparent_entry_shows_white_there():
    image = Image.new("P", (4, 4), 1)
    image.putpalette([0, 0, 0, 30, 60, 90])
    image.putpixel((3, 3), 0)
    rgb = decode(encoded(image, transparency=0), 3)
    assert rgb[:, 3, 3].tolist() == [255, 255, 255] and rgb[:, 0, 0].tolist() == [30, 60, 90]


@pytest.mark.parametrize("fmt", ["TIFF", "JPEG"])
def test_a_cmyk_image_decodes_to_rgb_and_gray(fmt):
    data = encoded(Image.new("CMYK", (4, 4), (255, 0, 0, 0)), fmt, **({"quality": 100} if fmt == "JPEG" else {}))
    assert Image.open(io.BytesIO(data)).mode == "CMYK"
    red, green, blue = decode(data, 3)[:, 1, 1].tolist()
    assert red <= 2 and green >= 253 and blue >= 253  # cyan ink: no red
    assert abs(int(decode(data, 1)[0, 1, 1]) - 179) <= 2  # 0.587 * 255 + 0.114 * 255


@pytest.mark.parametrize(
    "mode, pixel, expected",
    [
        ("RGBA", (200, 0, 0, 128), [227, 127, 127]),
        ("LA", (100, 128), [177, 177, 177]),
        ("RGBA", (10, 20, 30, 255), [10, 20, 30]),
        ("LA", (0, 0), [255, 255, 255]),
    ],
)
def test_alpha_is_composited_over_white(mode, pixel, expected):
    rgb = decode(encoded(Image.new(mode, (4, 4), pixel)), 3)[:, 1, 1].tolist()
    assert all(abs(a - b) <= 1 for a, b in zip(rgb, expected)), rgb


def test_rgb_becomes_gray_as_pillow_converts_it_and_gray_becomes_rgb_by_repeating():
    rgb = np.random.default_rng(0).integers(0, 256, (3, 3, 5, 5), dtype=np.uint8)
    gray = convert_channels(rgb, 1)
    pillow = [np.asarray(Image.fromarray(np.ascontiguousarray(im.transpose(1, 2, 0))).convert("L")) for im in rgb]
    assert gray.dtype == np.uint8 and gray.shape == (3, 1, 5, 5)
    assert np.array_equal(gray[:, 0], np.stack(pillow))
    back = convert_channels(gray, 3)
    assert back.shape == (3, 3, 5, 5) and all(np.array_equal(back[:, c], gray[:, 0]) for c in range(3))
    assert convert_channels(rgb, 3) is rgb
