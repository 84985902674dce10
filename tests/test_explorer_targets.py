"""The individual panel's target picker: novel classes or a folder of the data folder, messages in page terms."""

from __future__ import annotations

import re
import shutil

import pytest
import torch
from PIL import Image

from core.data import datasets
from core.errors import LearngeneError
from explorer.app import ExplorerApp
from explorer.individual import plan
from explorer.settings import Settings
from explorer.widgets.fields import FIX_CLASS, FIX_STYLE

JOB_TIMEOUT = 300
FLAG = re.compile(r"(?<![\w-])--[a-z]")  # a command-line option such as --root


def write_glyphs(folder, images: torch.Tensor) -> None:
    """Glyph images as dark ink on white PNGs (the way a student draws)."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(images):
        Image.fromarray(255 - image[0].numpy()).save(folder / f"{i:02d}.png")


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    """A data folder with an episodes folder (two 2-way episodes), an image folder, and a hidden folder."""
    root = tmp_path_factory.mktemp("data")
    glyphs = datasets.load("glyphs", image_size=32, seed=0)
    by_class = glyphs.indices_by_class()
    for e in range(2):
        for c in (2 * e, 2 * e + 1):
            idx = by_class[c]
            write_glyphs(root / "drawings" / f"ep{e}" / "support" / f"c{c}", glyphs.images[idx[:2]])
            write_glyphs(root / "drawings" / f"ep{e}" / "query" / f"c{c}", glyphs.images[idx[2:5]])
    for c in range(10, 14):
        write_glyphs(root / "letters" / f"c{c}", glyphs.images[by_class[c][:8]])
    (root / ".hidden").mkdir()
    return root


@pytest.fixture
def app(tmp_path_factory, smoke_run, data_root, monkeypatch):
    monkeypatch.setenv("LEARNGENE_DATA", str(data_root))
    runs = tmp_path_factory.mktemp("runs")
    shutil.copytree(smoke_run, runs / "smoke", ignore=shutil.ignore_patterns(".lock", "export"))
    return ExplorerApp(runs, Settings(run="smoke", target_tasks=1, baselines=False, shot=2))


def finish(panel) -> str:
    assert panel.jobs.join(JOB_TIMEOUT)
    return panel.status.value


def test_the_target_list_offers_novel_classes_and_each_folder_of_the_data_folder_with_what_it_holds(app):
    target = app.individual.target
    assert target.value == "" and target.options[0] == ("novel classes of the run", "")
    assert list(target.options[1:]) == [("drawings (episodes)", "drawings"), ("letters (image folder)", "letters")]


def test_the_invert_choice_shows_only_for_a_folder_target(app, data_root):
    panel = app.individual
    assert panel.target.value == "" and panel.invert.layout.display == "none"
    panel.target.value = "letters"
    assert panel.invert.layout.display == ""
    moved = data_root / "letters"
    moved.rename(data_root / ".letters")
    try:
        panel.refresh_targets.click()  # the folder is gone: back to the run's classes, nothing to invert
        assert panel.target.value == "" and panel.invert.layout.display == "none"
    finally:
        (data_root / ".letters").rename(moved)


def test_a_run_on_an_episodes_folder_uses_its_tasks_and_says_which_ink_polarity_it_chose(app):
    panel = app.individual
    panel.target.value = "drawings"
    assert panel.start(sweep=False)
    status = finish(panel)
    assert "finished: 4 target-task trainings" in status
    assert "inverted the target images (invert auto)" in status and not FLAG.search(status)
    assert "episodes of drawings, fine-tune" in panel.table.value


def test_a_run_on_an_image_folder_draws_its_tasks_from_that_folder(app):
    panel = app.individual
    panel.target.value, panel.invert.value, panel.way.value = "letters", "no", 3
    assert panel.start(sweep=False)
    status = finish(panel)
    assert "finished" in status and "kept the target images as they are (invert no" in status
    assert "3-way 2-shot from letters, fine-tune" in panel.table.value


@pytest.mark.parametrize(
    "way, shot, message, field",
    [
        (5, 2, "lower way (panel 3) to at most 4 classes per task", "way"),
        (3, 8, "lower shot (panel 3) to at most 7", "shot"),
    ],
)
def test_a_folder_too_small_for_the_setup_says_so_in_page_terms_and_outlines_the_field_to_change(
    app, way, shot, message, field
):
    panel = app.individual
    panel.target.value, panel.way.value, panel.shot.value = "letters", way, shot
    assert panel.start(sweep=False)
    status = finish(panel)
    assert message in status and "target imagefolder data" in status and not FLAG.search(status)
    outlined = [name for name in ("way", "shot", "target_tasks") if FIX_CLASS in getattr(panel, name)._dom_classes]
    assert outlined == [field] and FIX_STYLE in panel.status.value
    getattr(panel, field).value -= 1  # the user changes the field: its outline goes
    assert FIX_CLASS not in getattr(panel, field)._dom_classes


def test_a_broken_episodes_folder_ends_the_run_with_cores_line_in_page_terms(app, data_root):
    broken = data_root / "drawings" / "ep1" / "query" / "c3"
    broken.rename(broken.with_name("c9"))
    app.individual.target.value = "drawings"
    try:
        assert app.individual.start(sweep=False)
        status = finish(app.individual)
    finally:
        broken.with_name("c9").rename(broken)
    assert "episode ep1" in status and "same class folders" in status and not FLAG.search(status)
    assert not app.individual.run_button.disabled


def test_a_folder_that_disappeared_falls_back_to_the_novel_classes_on_refresh(app, data_root):
    panel = app.individual
    panel.target.value = "letters"
    moved = data_root / "letters"
    moved.rename(data_root / ".letters")
    try:
        assert panel.start(sweep=False) is False
        assert "gone from the data folder: refresh the target list" in panel.status.value
        panel.refresh_targets.click()
        assert panel.target.value == "" and "letters" not in [name for _, name in panel.target.options]
    finally:
        (data_root / ".letters").rename(moved)


@pytest.mark.parametrize("name", ["..", "../data", "/etc", "letters/c10", "."])
def test_target_names_cannot_leave_the_data_folder(data_root, name):
    with pytest.raises(LearngeneError, match="choose one from the target list") as err:
        plan.resolve_target(data_root, name)
    assert not FLAG.search(str(err.value))


def test_a_symlink_out_of_the_data_folder_is_refused(data_root, tmp_path):
    (data_root / "outside").symlink_to(tmp_path, target_is_directory=True)
    try:
        with pytest.raises(LearngeneError, match="not a folder of the data folder"):
            plan.resolve_target(data_root, "outside")
    finally:
        (data_root / "outside").unlink()
