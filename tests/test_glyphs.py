"""The built-in glyphs dataset: enough classes and faces, deterministic, cached safely; and its contact sheet."""

from __future__ import annotations

import io
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from core.cli.messages import words
from core.data import datasets, glyphs
from core.data.contact_sheet import contact_sheet, contact_sheet_png
from core.data.imageset import ImageSet

SMALL = {"image_size": 12, "samples_per_class": 2}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> ImageSet:
    """The default glyphs dataset, rendered once for this module into a private cache."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LEARNGENE_CACHE", str(tmp_path_factory.mktemp("glyph-cache")))
        return glyphs.load(None, image_size=32, seed=0)


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty cache folder that the loader uses for this test."""
    monkeypatch.setenv("LEARNGENE_CACHE", str(tmp_path))
    return tmp_path


def _cached_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("glyphs-v*.npz"))


def test_there_are_at_least_300_classes_each_drawn_from_at_least_12_faces() -> None:
    catalogue = glyphs.glyph_catalogue()
    assert len(catalogue) >= 300
    assert min(len(set(names)) for names in catalogue.values()) >= 12


def test_the_faces_of_a_class_really_draw_it_differently() -> None:
    index = {face.name: i for i, face in enumerate(glyphs.faces())}
    catalogue = glyphs.glyph_catalogue()
    for char in list(catalogue)[::50]:
        bitmaps = [glyphs.render(index[name], char, 32).astype(np.float32).ravel() for name in catalogue[char]]
        for i in range(len(bitmaps)):
            for j in range(i):
                changed = np.abs(bitmaps[i] - bitmaps[j]).sum() / np.maximum(bitmaps[i], bitmaps[j]).sum()
                assert changed > 0.01, (char, catalogue[char][i], catalogue[char][j])


def test_every_class_shows_at_least_12_faces_among_its_20_images() -> None:
    used = defaultdict(set)
    for char, face in glyphs.sample_faces(seed=0):
        used[char].add(face)
    assert set(used) == set(glyphs.glyph_catalogue())
    assert min(len(faces) for faces in used.values()) >= 12


def test_faces_only_claim_characters_their_fonts_really_contain() -> None:
    from fontTools.ttLib import TTFont

    for face in glyphs.faces():
        if not face.hershey:
            cmap = TTFont(face.source, lazy=True).getBestCmap()
            assert all(ord(code) in cmap for code in face.chars.values()), face.name


def test_latin_greek_and_cyrillic_lookalikes_make_one_class() -> None:
    catalogue = glyphs.glyph_catalogue()
    assert "A" in catalogue and "o" in catalogue
    assert "Α" not in catalogue and "А" not in catalogue  # Greek Alpha, Cyrillic A
    assert "о" not in catalogue and "ο" not in catalogue  # Cyrillic o, Greek omicron
    assert {"Ж", "λ", "ß"} <= set(catalogue)


def test_loaded_images_are_grayscale_uint8_with_20_per_class(dataset: ImageSet) -> None:
    classes = len(glyphs.glyph_catalogue())
    assert dataset.name == "glyphs"
    assert dataset.images.shape == (classes * 20, 1, 32, 32)
    assert dataset.images.dtype == torch.uint8 and dataset.labels.dtype == torch.int64
    assert torch.bincount(dataset.labels).tolist() == [20] * classes
    assert dataset.class_names[10] == "A (U+0041)"


def test_every_image_has_bright_ink_on_a_black_border(dataset: ImageSet) -> None:
    images = dataset.images[:, 0]
    assert (images.flatten(1).max(dim=1).values >= 128).all()
    border = torch.cat([images[:, 0], images[:, -1], images[:, :, 0], images[:, :, -1]], dim=1)
    assert border.float().mean() < 8


def test_same_seed_renders_byte_identical_images(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEARNGENE_CACHE", str(tmp_path / "one"))
    first = glyphs.load(None, seed=3, **SMALL)
    monkeypatch.setenv("LEARNGENE_CACHE", str(tmp_path / "two"))
    second = glyphs.load(None, seed=3, **SMALL)
    assert first.images.numpy().tobytes() == second.images.numpy().tobytes()
    assert torch.equal(first.labels, second.labels)


def test_another_seed_renders_other_images(cache: Path) -> None:
    first = glyphs.load(None, seed=0, **SMALL)
    second = glyphs.load(None, seed=1, **SMALL)
    assert not torch.equal(first.images, second.images)
    assert first.class_names == second.class_names


def test_a_second_load_reads_the_cache_instead_of_rendering(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = glyphs.load(None, seed=5, **SMALL)
    assert len(_cached_files(cache)) == 1

    def no_rendering(*args: object, **kwargs: object) -> None:
        raise AssertionError("rendered although a cached copy exists")

    monkeypatch.setattr(glyphs, "_generate", no_rendering)
    second = glyphs.load(None, seed=5, **SMALL)
    assert torch.equal(first.images, second.images) and first.class_names == second.class_names


def test_the_cache_file_is_keyed_by_seed_size_and_images_per_class(cache: Path) -> None:
    glyphs.load(None, seed=0, image_size=12, samples_per_class=2)
    glyphs.load(None, seed=1, image_size=12, samples_per_class=2)
    glyphs.load(None, seed=0, image_size=16, samples_per_class=2)
    glyphs.load(None, seed=0, image_size=12, samples_per_class=3)
    assert len(_cached_files(cache)) == 4
    assert not list(cache.glob("*.tmp"))


@pytest.mark.parametrize("damage", [b"", b"not a zip file", b"PK\x03\x04 truncated"])
def test_a_corrupt_cache_file_is_rendered_again(cache: Path, damage: bytes) -> None:
    good = glyphs.load(None, seed=2, **SMALL)
    (path,) = _cached_files(cache)
    path.write_bytes(damage)
    again = glyphs.load(None, seed=2, **SMALL)
    assert torch.equal(good.images, again.images)
    with np.load(path, allow_pickle=False) as data:
        assert np.array_equal(data["images"], good.images.numpy())


def test_a_cache_file_of_the_wrong_shape_is_not_trusted(cache: Path) -> None:
    good = glyphs.load(None, seed=4, **SMALL)
    (path,) = _cached_files(cache)
    with open(path, "wb") as handle:
        np.savez(
            handle, images=np.zeros((3, 1, 12, 12), np.uint8), labels=np.zeros(3, np.int64), class_names=np.array(["x"])
        )
    assert torch.equal(glyphs.load(None, seed=4, **SMALL).images, good.images)


def test_a_corrupt_class_catalogue_is_rebuilt(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    catalogue = glyphs.glyph_catalogue()
    rebuilt = []
    monkeypatch.setattr(glyphs, "_build_catalogue", lambda: rebuilt.append(1) or catalogue)
    path = glyphs._catalogue_path()
    path.write_text('{"A": ["no such face"]}', encoding="utf-8")
    glyphs._catalogue.cache_clear()
    try:
        assert glyphs.glyph_catalogue() == catalogue and rebuilt == [1]
        glyphs._catalogue.cache_clear()
        assert glyphs.glyph_catalogue() == catalogue and rebuilt == [1]  # the rewritten file is trusted
    finally:
        glyphs._catalogue.cache_clear()


def test_a_saved_catalogue_naming_a_face_that_cannot_draw_its_class_is_rebuilt_before_rendering(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalogue = glyphs.glyph_catalogue()
    char = next(iter(catalogue))
    lacking = next(face.name for face in glyphs.faces() if char not in face.chars)
    glyphs._catalogue_path().write_text(
        json.dumps({**catalogue, char: catalogue[char][1:] + [lacking]}), encoding="utf-8"
    )
    rebuilt = []
    monkeypatch.setattr(glyphs, "_build_catalogue", lambda: rebuilt.append(1) or catalogue)
    glyphs._catalogue.cache_clear()
    try:
        loaded = glyphs.load(None, seed=11, **SMALL)
        assert rebuilt == [1] and glyphs.glyph_catalogue() == catalogue
        assert [glyphs.class_name(c) for c in catalogue] == list(loaded.class_names)
    finally:
        glyphs._catalogue.cache_clear()


def test_cache_folder_follows_learngene_cache_then_xdg_then_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("LEARNGENE_CACHE", str(tmp_path / "mine"))
    assert glyphs.cache_dir() == tmp_path / "mine"
    monkeypatch.delenv("LEARNGENE_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert glyphs.cache_dir() == tmp_path / "xdg" / "learngene"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert glyphs.cache_dir() == tmp_path / "home" / ".cache" / "learngene"


def test_info_counts_classes_without_rendering_images(monkeypatch: pytest.MonkeyPatch) -> None:
    classes = len(glyphs.glyph_catalogue())
    monkeypatch.setattr(glyphs, "render", lambda *args, **kwargs: pytest.fail("info rendered an image"))
    info = datasets.describe("glyphs")
    assert (info.name, info.classes, info.images) == ("glyphs", classes, classes * 20)
    assert (info.resolution, info.channels, info.available) == ((32, 32), 1, True) and not info.reason
    how_to_get = words(info.how_to_get)
    assert "matplotlib" in how_to_get and "Hershey" in how_to_get


def test_the_registry_loads_glyphs_at_the_asked_size(cache: Path) -> None:
    imageset = datasets.load("glyphs", image_size=16, seed=0)
    assert imageset.resolution == (16, 16) and imageset.channels == 1
    assert imageset.images_per_class() == 20


def test_contact_sheet_is_a_png_grid_of_classes_by_images(dataset: ImageSet, tmp_path: Path) -> None:
    path = contact_sheet(dataset, tmp_path / "sheet.png", classes=3, per_class=4, scale=2, seed=1)
    with Image.open(path) as sheet:
        assert sheet.format == "PNG" and sheet.mode == "L"
        assert sheet.size == (4 * (64 + 2) + 2, 3 * (64 + 2) + 2)
    assert path.read_bytes() == contact_sheet_png(dataset, classes=3, per_class=4, scale=2, seed=1)
    assert list(tmp_path.iterdir()) == [path]


def test_contact_sheet_shows_the_chosen_classes_images(dataset: ImageSet) -> None:
    sheet = np.asarray(Image.open(io.BytesIO(contact_sheet_png(dataset, classes=1, per_class=2, scale=1, seed=0))))
    label = int(torch.randperm(dataset.num_classes, generator=torch.Generator().manual_seed(0))[0])
    first = int(dataset.indices_by_class()[label][0])
    assert np.array_equal(sheet[2:34, 2:34], dataset.images[first, 0].numpy())
