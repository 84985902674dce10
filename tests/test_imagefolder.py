"""Your own image folder: one class per subfolder, gray or RGB by the files, centre-cropped, clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.cli.messages import line, words
from core.data import datasets, imagefolder
from core.errors import LearngeneError


def _save(path: Path, image: Image.Image) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


def _gray_folder(root: Path) -> Path:
    """Three classes of gray PNGs whose brightness tells the class (3, 2 and 4 images)."""
    for name, count, level in (("circle", 3, 60), ("square", 2, 120), ("star", 4, 180)):
        for i in range(count):
            _save(root / name / f"{i}.png", Image.new("L", (24 + i, 24), level + i))
    return root


def test_each_subfolder_is_one_class_in_sorted_order(tmp_path: Path) -> None:
    imageset = imagefolder.load(_gray_folder(tmp_path), image_size=16)
    assert imageset.class_names == ("circle", "square", "star")
    assert imageset.labels.tolist() == [0] * 3 + [1] * 2 + [2] * 4
    assert imageset.images.shape == (9, 1, 16, 16)
    assert imageset.images[:, 0, 8, 8].tolist() == [60, 61, 62, 120, 121, 180, 181, 182, 183]


def test_gray_files_give_one_channel_and_one_colour_file_makes_it_rgb(tmp_path: Path) -> None:
    root = _gray_folder(tmp_path)
    assert imagefolder.load(root, image_size=8).channels == 1
    _save(root / "circle" / "colour.jpg", Image.new("RGB", (30, 30), (200, 30, 10)))
    imageset = imagefolder.load(root, image_size=8)
    assert imageset.channels == 3
    red, green, blue = imageset.images[3, :, 4, 4].tolist()  # colour.jpg sorts after 0-2.png
    assert red > 180 and green < 60 and blue < 40
    assert imageset.images[0, :, 4, 4].tolist() == [60, 60, 60]


def test_a_wide_image_is_centre_cropped_to_a_square_before_resizing(tmp_path: Path) -> None:
    wide = np.zeros((20, 60, 3), dtype=np.uint8)
    wide[:, :20] = (255, 0, 0)
    wide[:, 20:40] = (0, 255, 0)
    wide[:, 40:] = (0, 0, 255)
    _save(tmp_path / "flags" / "wide.png", Image.fromarray(wide))
    image = imagefolder.load(tmp_path, image_size=10).images[0]
    assert image[1].min() >= 250 and image[0].max() <= 5 and image[2].max() <= 5


def test_transparent_pixels_become_white(tmp_path: Path) -> None:
    _save(tmp_path / "icons" / "clear.png", Image.new("RGBA", (12, 12), (0, 0, 0, 0)))
    _save(tmp_path / "icons" / "solid.png", Image.new("RGBA", (12, 12), (10, 20, 30, 255)))
    images = imagefolder.load(tmp_path, image_size=8).images
    assert images[0].min() == 255
    assert images[1, :, 4, 4].tolist() == [10, 20, 30]


def test_hidden_and_non_image_files_are_ignored_and_subfolders_searched(tmp_path: Path) -> None:
    root = _gray_folder(tmp_path)
    (root / "circle" / "notes.txt").write_text("not an image")
    (root / "circle" / ".DS_Store").write_bytes(b"\0\1")
    _save(root / "circle" / ".thumbs" / "t.png", Image.new("L", (4, 4)))
    _save(root / ".cache" / "x.png", Image.new("L", (4, 4)))
    _save(root / "star" / "more" / "deep.PNG", Image.new("L", (8, 8), 7))
    imageset = imagefolder.load(root, image_size=8)
    assert imageset.class_names == ("circle", "square", "star")
    assert imageset.images_per_class() == 2 and len(imageset.labels) == 10


def test_info_counts_classes_images_and_channels_like_load(tmp_path: Path) -> None:
    root = _gray_folder(tmp_path)
    _save(root / "square" / "palette.gif", Image.new("L", (9, 9), 50).convert("P"))
    described = imagefolder.info(root)
    loaded = imagefolder.load(root, image_size=8)
    assert described.available and described.reason == ()
    assert (described.classes, described.images, described.channels) == (3, 10, 1)
    assert (loaded.num_classes, len(loaded.labels), loaded.channels) == (3, 10, 1)


def test_loading_through_the_registry_is_repeatable(tmp_path: Path) -> None:
    root = _gray_folder(tmp_path)
    first = datasets.load("imagefolder", root, image_size=12, seed=1)
    second = datasets.load("imagefolder", root, image_size=12, seed=2)
    assert first.images.equal(second.images) and first.labels.equal(second.labels)


def _bad_folder(kind: str, root: Path) -> Path:
    """A data root broken in one way."""
    if kind == "missing folder":
        return root / "absent"
    if kind == "no subfolders":
        _save(root / "loose.png", Image.new("L", (4, 4)))
    elif kind == "class without images":
        _gray_folder(root)
        (root / "empty").mkdir()
    else:
        _gray_folder(root)
        (root / "star" / "broken.png").write_bytes(b"junk")
    return root


@pytest.mark.parametrize(
    "kind, message",
    [
        ("missing folder", "does not exist"),
        ("no subfolders", "no class subfolders"),
        ("class without images", "empty has no images"),
        ("unreadable image", "broken.png"),
    ],
)
def test_bad_folders_give_one_line_errors_naming_the_problem(tmp_path: Path, kind: str, message: str) -> None:
    root = _bad_folder(kind, tmp_path)
    with pytest.raises(LearngeneError, match=message) as caught:
        imagefolder.load(root, image_size=8)
    assert "\n" not in str(caught.value)
    described = imagefolder.info(root)
    assert not described.available and message in words(described.reason)


def test_a_truncated_image_is_named_when_loading(tmp_path: Path) -> None:
    noise = np.random.default_rng(0).integers(0, 255, (64, 64), np.uint8)
    path = _save(tmp_path / "noise" / "cut.png", Image.fromarray(noise))
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(LearngeneError, match="cut.png"):
        imagefolder.load(tmp_path, image_size=8)


def test_no_root_asks_for_a_folder(tmp_path: Path) -> None:
    with pytest.raises(LearngeneError) as caught:
        imagefolder.load(None, image_size=8)
    assert "--root" in line(caught.value) and "--root" in words(imagefolder.info(None).reason)
