"""Omniglot from a local copy: the real small background sets, torchvision's folders, zips in place, clear errors."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
import torch
from conftest import shared_data
from PIL import Image, ImageDraw

from core.cli.messages import line, words
from core.data import omniglot
from core.data.imageset import ImageSet
from core.errors import LearngeneError

SMALL_SETS = ["images_background_small1.zip", "images_background_small2.zip"]


@pytest.fixture(scope="module")
def real_root() -> Path:
    """The data root holding the real Omniglot zips, or a skip saying where to put them."""
    root = shared_data()
    if root is None or not omniglot.locate(root):
        pytest.skip("real Omniglot data not found: put its zips in $LEARNGENE_DATA/omniglot or ../shared/data/omniglot")
    return root


@pytest.fixture(scope="module")
def real(real_root: Path) -> ImageSet:
    return omniglot.load(real_root, image_size=32)


def _stroke_png(offset: int) -> bytes:
    """A 105x105 one-bit drawing like Omniglot's: a black bar on white, moved by `offset` pixels."""
    image = Image.new("1", (105, 105), 1)
    ImageDraw.Draw(image).rectangle((40 + offset, 20, 60 + offset, 85), fill=0)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _zip(path: Path, top: str, characters: dict[str, int]) -> Path:
    """A zip laid out like the originals: top/alphabet/character/NNNN_MM.png, `count` drawers per character."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        for character, count in characters.items():
            for drawer in range(count):
                archive.writestr(f"{top}/{character}/0001_{drawer + 1:02d}.png", _stroke_png(drawer))
    return path


def test_the_two_small_background_sets_hold_242_characters_by_20_drawers(real_root: Path, real: ImageSet) -> None:
    if sorted(p.name for p in omniglot.locate(real_root)) != SMALL_SETS:
        pytest.skip("the data root holds other Omniglot files than the two small background sets")
    assert real.images.shape == (4840, 1, 32, 32) and real.images.dtype == torch.uint8
    assert real.num_classes == 242
    assert torch.bincount(real.labels).tolist() == [20] * 242
    described = omniglot.info(real_root)
    assert described.available and (described.classes, described.images) == (242, 4840)


def test_real_classes_are_alphabet_and_character_sorted_across_both_zips(real: ImageSet) -> None:
    assert list(real.class_names) == sorted(real.class_names)
    assert {"Balinese/character01", "Greek/character03", "Tagalog/character01"} <= set(real.class_names)


def test_real_strokes_are_bright_ink_on_a_black_background(real: ImageSet) -> None:
    images = real.images.float()
    border = torch.cat([images[..., 0, :], images[..., -1, :], images[..., :, 0], images[..., :, -1]], dim=-1)
    assert border.mean() < 5
    ink = (images > 127).float().mean(dim=(1, 2, 3))
    assert 0.01 < ink.min() and ink.max() < 0.5
    assert images.amax(dim=(1, 2, 3)).min() >= 200


def test_torchvision_folder_layout_loads_background_and_evaluation(tmp_path: Path) -> None:
    for part, alphabet in (("images_background", "Alpha"), ("images_evaluation", "Beta")):
        for character in ("character01", "character02"):
            for drawer in range(3):
                path = tmp_path / "omniglot-py" / part / alphabet / character / f"0{drawer}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(_stroke_png(drawer))
    imageset = omniglot.load(tmp_path, image_size=21)
    assert imageset.class_names == ("Alpha/character01", "Alpha/character02", "Beta/character01", "Beta/character02")
    assert imageset.images.shape == (12, 1, 21, 21)
    assert imageset.images[:, 0, 10, 10].min() > 240 and imageset.images[:, 0, 0, 0].max() == 0


@pytest.mark.parametrize("where", [".", "omniglot", "omniglot-py"])
def test_zips_are_found_in_the_root_or_its_omniglot_folder(tmp_path: Path, where: str) -> None:
    _zip(tmp_path / where / "images_background.zip", "images_background", {"Alpha/character01": 4})
    assert omniglot.info(tmp_path).images == 4
    assert omniglot.load(tmp_path, image_size=16).images.shape == (4, 1, 16, 16)


def test_a_character_in_two_zips_counts_once(tmp_path: Path) -> None:
    shared = {"Greek/character01": 3}
    _zip(tmp_path / "images_background_small1.zip", "images_background_small1", shared | {"Korean/character01": 2})
    _zip(tmp_path / "images_background_small2.zip", "images_background_small2", shared | {"Tagalog/character01": 2})
    imageset = omniglot.load(tmp_path, image_size=8)
    assert imageset.class_names == ("Greek/character01", "Korean/character01", "Tagalog/character01")
    assert torch.bincount(imageset.labels).tolist() == [3, 2, 2]


def test_loading_twice_gives_the_same_images(tmp_path: Path) -> None:
    _zip(tmp_path / "images_evaluation.zip", "images_evaluation", {"Alpha/character01": 3, "Beta/character07": 2})
    first = omniglot.load(tmp_path, image_size=16, seed=0)
    second = omniglot.load(tmp_path, image_size=16, seed=5)
    assert first.images.equal(second.images) and first.labels.equal(second.labels)


def test_a_corrupt_zip_gives_a_one_line_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / "images_background.zip").write_bytes(b"PK\x03\x04 this is not really a zip")
    with pytest.raises(LearngeneError, match="images_background.zip is corrupt") as caught:
        omniglot.load(tmp_path, image_size=16)
    assert "\n" not in str(caught.value)
    described = omniglot.info(tmp_path)
    assert not described.available and "images_background.zip" in words(described.reason)


def test_an_unreadable_png_inside_a_zip_is_named(tmp_path: Path) -> None:
    path = _zip(tmp_path / "images_background.zip", "images_background", {"Alpha/character01": 2})
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("images_background/Alpha/character01/0001_03.png", b"\x89PNG garbage")
    with pytest.raises(LearngeneError, match="0001_03.png"):
        omniglot.load(tmp_path, image_size=16)


def test_missing_data_says_where_to_put_it(tmp_path: Path) -> None:
    with pytest.raises(LearngeneError) as no_root:
        omniglot.load(None, image_size=32)
    assert "LEARNGENE_DATA" in line(no_root.value)
    with pytest.raises(LearngeneError, match=f"not found under {tmp_path}.*images_background.zip"):
        omniglot.load(tmp_path, image_size=32)
    assert words(omniglot.info(None).reason) == "no data root: set LEARNGENE_DATA or pass --root"
    described = omniglot.info(tmp_path)
    assert not described.available and "not found under" in words(described.reason) and described.how_to_get
