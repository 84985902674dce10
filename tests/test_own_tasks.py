"""Your own few-shot tasks: runs record their data, targets from another dataset or from episodes, ink polarity."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from conftest import SHORT
from PIL import Image

from core.cli.main import main
from core.collective.config import preset
from core.collective.runs import CONFIG, open_run
from core.collective.training import train_collective
from core.data import datasets
from core.data.fingerprint import DataRecord, content_sha256
from core.data.transforms import normalise
from core.errors import LearngeneError
from core.events import Cancelled, TaskFinished
from core.individual.config import individual_preset
from core.individual.evaluation import evaluate
from core.individual.targets import TargetSource, make_targets, run_imageset, target_tasks
from core.learngene.extraction import extract
from core.learngene.selection import check_block

QUICK = ["--epochs", "1", "--quiet"]


def glyph_images(size: int = 32):
    """The glyphs dataset at `size` px (bright ink on black), the data the smoke run trains on."""
    return datasets.load("glyphs", image_size=size, seed=0)


def write_class(folder: Path, images: torch.Tensor, *, dark_ink: bool = False, rgb: bool = False) -> None:
    """Write (N, 1, H, W) uint8 glyphs as PNG files, optionally as dark ink on white and as RGB."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(images):
        pixels = (255 - image[0] if dark_ink else image[0]).numpy()
        picture = Image.fromarray(pixels)
        (picture.convert("RGB") if rgb else picture).save(folder / f"{i:02d}.png")


def write_episodes(root: Path, classes: list[list[int]], shots: list[int], query: int = 3) -> list[list[int]]:
    """Episodes of glyph classes written as dark-on-white PNGs; returns each episode's support image indices."""
    glyphs = glyph_images()
    by_class = glyphs.indices_by_class()
    supports = []
    for e, (chosen, shot) in enumerate(zip(classes, shots)):
        support = []
        for c in chosen:
            idx = by_class[c]
            write_class(root / f"ep{e}" / "support" / f"class{c:03d}", glyphs.images[idx[:shot]], dark_ink=True)
            write_class(
                root / f"ep{e}" / "query" / f"class{c:03d}", glyphs.images[idx[shot : shot + query]], dark_ink=True
            )
            support += idx[:shot].tolist()
        supports.append(support)
    return supports


@pytest.fixture(scope="module")
def gene_file(smoke_run, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("gene") / "gene.safetensors"
    assert main(["extract", "--run-dir", str(smoke_run), "--layers", "conv3-conv4", "--out", str(path)]) == 0
    return path


@pytest.fixture(scope="module")
def episodes_dir(tmp_path_factory) -> Path:
    """Three 3-way episodes of glyph classes, dark ink on white; the last has 1 support image per class, not 2."""
    root = tmp_path_factory.mktemp("episodes")
    write_episodes(root, [[0, 1, 2], [3, 4, 5], [6, 7, 8]], [2, 2, 1])
    return root


def run_json(argv, capsys) -> tuple[dict, str]:
    assert main(argv) == 0
    out = capsys.readouterr()
    return json.loads(out.out), out.err


# ---------------------------------------------------------------- episodes


def test_episodes_give_one_task_each_with_rows_per_task_accuracies_and_a_target_object(smoke_run, episodes_dir, capsys):
    argv = ["individual", "--run-dir", str(smoke_run), "--target-dataset", "episodes"]
    result, err = run_json([*argv, "--target-root", str(episodes_dir), "--epochs", "1", "--json"], capsys)
    assert [r["method"] for r in result["rows"]] == ["learngene", "scratch"]
    for row in result["rows"]:
        assert row["way"] == 3 and row["tasks"] == 3 and row["shot"] is None  # episodes differ in shot
        assert len(row["task_accuracies"]) == 3 and all(0 <= a <= 1 for a in row["task_accuracies"])
    target = result["target"]
    assert target["kind"] == "episodes" and target["path"] == str(episodes_dir)
    assert (target["way"], target["shot"], target["query"], target["tasks"]) == (3, None, 3, 3)
    assert [(e["name"], e["shot"]) for e in target["episodes"]] == [("ep0", 2), ("ep1", 2), ("ep2", 1)]
    assert target["polarity"]["invert"] == "auto" and target["polarity"]["inverted"] is True
    assert "inverted the target images (invert auto)" in err


def test_the_table_prints_per_task_accuracies_and_tasks_keeps_the_first_episodes(smoke_run, episodes_dir, capsys):
    argv = ["individual", "--run-dir", str(smoke_run), "--target-dataset", "episodes"]
    assert main([*argv, "--target-root", str(episodes_dir), "--tasks", "2", *QUICK]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert f"2 target tasks from episodes in {episodes_dir}, 3-way 2-shot" in lines[0]
    assert lines[1].endswith("per-task accuracy")
    assert lines[2].startswith("learngene") and len(lines[2].split()[-2:]) == 2
    assert all(0 <= float(a) <= 1 for a in lines[2].split()[-2:])


def test_episode_images_reach_the_model_as_the_training_glyphs_ink_restored(smoke_run, tmp_path):
    supports = write_episodes(tmp_path, [[10, 11]], [2])
    run = open_run(smoke_run)
    gene = extract(run, check_block(run.spec().layer_names(), ("conv3", "conv4")))
    config = individual_preset("fast")
    targets = target_tasks(TargetSource("episodes", str(tmp_path)), run, gene, config)
    expected = normalise(glyph_images().images[torch.tensor(supports[0])])
    assert torch.equal(targets.tasks[0].support, expected)
    assert targets.tasks[0].support_labels.tolist() == [0, 0, 1, 1]
    kept = target_tasks(TargetSource("episodes", str(tmp_path), "no"), run, gene, config)
    assert torch.equal(kept.tasks[0].support, normalise(255 - glyph_images().images[torch.tensor(supports[0])]))
    assert "kept the target images as they are (invert no" in kept.polarity.line()


def test_the_same_seed_gives_the_same_numbers_on_episodes(smoke_run, episodes_dir):
    run = open_run(smoke_run)
    gene = extract(run, check_block(run.spec().layer_names(), ("conv3", "conv4")))
    config = individual_preset("fast", epochs=1)
    first, second = (
        evaluate(
            run, gene, config, targets=target_tasks(TargetSource("episodes", str(episodes_dir)), run, gene, config)
        )
        for _ in range(2)
    )
    assert [r["task_accuracies"] for r in first] == [r["task_accuracies"] for r in second]


def _one_line_exit_2(argv, capsys) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    return err


def test_an_episode_whose_query_classes_differ_from_its_support_classes_is_named(smoke_run, tmp_path, capsys):
    write_episodes(tmp_path, [[0, 1], [2, 3]], [1, 1])
    (tmp_path / "ep1" / "query" / "class003").rename(tmp_path / "ep1" / "query" / "class009")
    argv = ["individual", "--run-dir", str(smoke_run), "--target-dataset", "episodes", "--target-root", str(tmp_path)]
    err = _one_line_exit_2([*argv, *QUICK], capsys)
    assert "episode ep1" in err and "query classes (class002, class009)" in err and "same class folders" in err


def test_episodes_of_different_way_are_refused_naming_the_episode(smoke_run, tmp_path, capsys):
    write_episodes(tmp_path, [[0, 1], [2, 3, 4]], [1, 1])
    argv = ["individual", "--run-dir", str(smoke_run), "--target-dataset", "episodes", "--target-root", str(tmp_path)]
    err = _one_line_exit_2([*argv, *QUICK], capsys)
    assert "episode ep1 is 3-way but episode ep0 is 2-way" in err and "one head size" in err


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--way", "3"], "episodes fix their own way"),
        (["--tasks", "9"], "holds 3 episodes, fewer than 9 target tasks"),
    ],
)
def test_counts_the_episodes_fix_are_refused(smoke_run, episodes_dir, capsys, extra, message):
    argv = ["individual", "--run-dir", str(smoke_run), "--target-dataset", "episodes"]
    assert message in _one_line_exit_2([*argv, "--target-root", str(episodes_dir), *extra, *QUICK], capsys)


# ---------------------------------------------------------------- another dataset


@pytest.fixture(scope="module")
def dark_ink_folder(tmp_path_factory) -> Path:
    """An image folder of 6 glyph classes (12 images each) as dark ink on white, saved as RGB PNGs."""
    root = tmp_path_factory.mktemp("folder")
    glyphs = glyph_images()
    for c, idx in enumerate(glyphs.indices_by_class()[100:106]):
        write_class(root / f"letter{c}", glyphs.images[idx[:12]], dark_ink=True, rgb=True)
    return root


def test_an_image_folder_with_dark_ink_is_inverted_by_auto_and_arrives_as_the_glyphs(smoke_run, dark_ink_folder):
    run = open_run(smoke_run)
    gene = extract(run, check_block(run.spec().layer_names(), ("conv3", "conv4")))
    config = individual_preset("fast")
    targets = target_tasks(TargetSource("imagefolder", str(dark_ink_folder)), run, gene, config, way=2, shot=3)
    folder = datasets.load("imagefolder", dark_ink_folder, image_size=32)
    assert folder.channels == 3 and targets.tasks[0].support.shape[1] == 1  # RGB files, the run's one channel
    task = targets.tasks[0].task
    glyphs = glyph_images().images[torch.cat([i[:12] for i in glyph_images().indices_by_class()[100:106]])]
    assert torch.equal(targets.tasks[0].support, normalise(glyphs[task.support]))
    assert targets.polarity.inverted and targets.source["polarity"]["training_background"] == 0.0
    assert targets.source["classes"] == 6 and targets.source["kind"] == "dataset"


def test_auto_keeps_a_folder_whose_background_already_matches_the_training_images(smoke_run, tmp_path):
    glyphs = glyph_images()
    for c, idx in enumerate(glyphs.indices_by_class()[200:203]):
        write_class(tmp_path / f"c{c}", glyphs.images[idx[:6]])
    run = open_run(smoke_run)
    gene = extract(run, check_block(run.spec().layer_names(), ("conv3", "conv4")))
    targets = target_tasks(
        TargetSource("imagefolder", str(tmp_path)), run, gene, individual_preset("fast"), way=2, shot=2
    )
    assert not targets.polarity.inverted
    assert targets.polarity.line().endswith("kept the target images as they are (invert auto)")


def test_imagefolder_target_draws_tasks_from_every_class_of_the_folder(smoke_run, dark_ink_folder, capsys):
    argv = ["individual", "--run-dir", str(smoke_run), "--target-dataset", "imagefolder"]
    argv += ["--target-root", str(dark_ink_folder), "--way", "4", "--shot", "2", "--tasks", "2", "--epochs", "1"]
    result, err = run_json([*argv, "--json"], capsys)
    target = result["target"]
    assert target["kind"] == "dataset" and target["dataset"] == "imagefolder" and target["classes"] == 6
    assert (target["way"], target["shot"], target["tasks"], target["query"]) == (4, 2, 2, 10)
    assert all(len(r["task_accuracies"]) == 2 and r["way"] == 4 for r in result["rows"])
    assert "ink polarity: target background light (1.00), training background dark (0.00): inverted" in err


def test_the_runs_own_dataset_as_a_target_is_refused_because_its_classes_are_not_new(smoke_run, capsys):
    err = _one_line_exit_2(["individual", "--run-dir", str(smoke_run), "--target-dataset", "glyphs", *QUICK], capsys)
    assert "classes that run" in err and "are not new" in err


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--invert", "yes"], "--invert applies to target tasks from elsewhere"),
        (["--target-dataset", "imagefolder"], "needs --target-root PATH"),
    ],
)
def test_target_options_that_do_not_fit_together_are_refused(smoke_run, capsys, extra, message):
    assert message in _one_line_exit_2(["individual", "--run-dir", str(smoke_run), *extra, *QUICK], capsys)


# ---------------------------------------------------------------- a learngene file alone


def test_a_learngene_file_alone_runs_learngene_and_scratch(gene_file, episodes_dir, capsys):
    argv = ["individual", "--learngene", str(gene_file), "--target-dataset", "episodes"]
    result, _ = run_json([*argv, "--target-root", str(episodes_dir), "--epochs", "1", "--quiet", "--json"], capsys)
    assert [r["method"] for r in result["rows"]] == ["learngene", "scratch"]
    assert result["setup"]["run_dir"] is None and result["selection"]["rule"] == "file"
    assert result["target"]["polarity"]["inverted"] is True  # the training background measured on glyphs


@pytest.mark.parametrize("option, what", [("--baselines", "the baselines"), ("--sizes", "the size sweep")])
def test_methods_that_need_the_collective_model_say_so_in_one_line(gene_file, episodes_dir, capsys, option, what):
    argv = ["individual", "--learngene", str(gene_file), "--target-dataset", "episodes"]
    err = _one_line_exit_2([*argv, "--target-root", str(episodes_dir), option, *QUICK], capsys)
    assert what in err and "cannot run without the collective model" in err and "--run-dir" in err


def test_a_learngene_file_alone_needs_a_target_dataset(gene_file, capsys):
    err = _one_line_exit_2(["individual", "--learngene", str(gene_file), *QUICK], capsys)
    assert "no novel classes" in err


# ---------------------------------------------------------------- runs that know their data


def test_a_run_records_its_division_by_class_name_and_a_fingerprint_of_its_data(smoke_run):
    run = open_run(smoke_run)
    record = DataRecord.from_dict(run.data_record, str(smoke_run))
    imageset = run_imageset(run)
    assert record.dataset == "glyphs" and record.classes == imageset.class_names
    assert record.sha256 == content_sha256(imageset) and set(record.images_per_class) == {20}
    pools = [set(record.division[p]) for p in ("source", "open_world", "novel")]
    assert set().union(*pools) == set(record.classes) and sum(map(len, pools)) == len(record.classes)
    division = run.config.division(imageset.class_names)
    assert record.division["novel"] == tuple(imageset.class_names[i] for i in division.novel)
    assert record.background == 0.0


@pytest.fixture(scope="module")
def folder_run(tmp_path_factory):
    """A smoke run trained on an image folder of 10 glyph classes (16 px), and that folder."""
    base = tmp_path_factory.mktemp("folder-run")
    data = base / "data"
    glyphs = glyph_images(16)
    for c, idx in enumerate(glyphs.indices_by_class()[300:310]):
        write_class(data / f"g{c}", glyphs.images[idx[:12]])
    run_dir = base / "run"
    train_collective(preset("smoke", dataset="imagefolder", image_size=16, **SHORT), run_dir, root=data)
    return run_dir, data


def test_a_class_folder_added_after_training_stops_individual_with_one_line(folder_run, capsys):
    run_dir, data = folder_run
    argv = ["individual", "--run-dir", str(run_dir), "--root", str(data), "--way", "2", "--shot", "2"]
    assert main([*argv, "--tasks", "1", *QUICK]) == 0
    capsys.readouterr()
    shutil.copytree(data / "g0", data / "zeta")
    try:
        err = _one_line_exit_2([*argv, "--tasks", "1", *QUICK], capsys)
    finally:
        shutil.rmtree(data / "zeta")
    assert "1 class added (zeta)" in err and "use the data root the run was trained on" in err


def test_a_changed_image_count_is_a_note_and_the_recorded_novel_classes_are_used(folder_run):
    run_dir, data = folder_run
    run = open_run(run_dir)
    novel = DataRecord.from_dict(run.data_record, str(run_dir)).division["novel"]
    victim = next(p for p in sorted(data.iterdir()) if p.name not in novel)
    moved = victim / "11.png"
    moved.rename(data / "spare.png")
    try:
        imageset = datasets.load("imagefolder", data, image_size=16)
        targets = make_targets(run, imageset, way=2, shot=2, query=3, tasks=1, seed=0)
    finally:
        (data / "spare.png").rename(moved)
    assert {imageset.class_names[c] for c in targets.tasks[0].task.classes} == set(novel)
    assert len(targets.notes) == 1 and f"{victim.name} has 11 images, 12 when trained" in targets.notes[0]


def test_resuming_a_run_whose_data_changed_is_refused(tmp_path):
    data = tmp_path / "data"
    glyphs = glyph_images(16)
    for c, idx in enumerate(glyphs.indices_by_class()[320:330]):
        write_class(data / f"g{c}", glyphs.images[idx[:12]])
    config = preset("smoke", dataset="imagefolder", image_size=16, tasks=3, epochs=1)
    done = []
    with pytest.raises(Cancelled):
        train_collective(
            config,
            tmp_path / "run",
            root=data,
            listeners=[lambda e: isinstance(e, TaskFinished) and done.append(e)],
            should_stop=lambda: bool(done),
        )
    shutil.copytree(data / "g0", data / "new")
    with pytest.raises(LearngeneError, match=r"1 class added \(new\)\): resume with the data root"):
        train_collective(config, tmp_path / "run", root=data, resume=True)
    shutil.rmtree(data / "new")
    assert train_collective(config, tmp_path / "run", root=data, resume=True).complete


def test_a_run_from_before_data_records_still_opens_and_says_once_its_division_is_unverified(
    smoke_run, tmp_path, capsys
):
    old = tmp_path / "old"
    shutil.copytree(smoke_run, old, ignore=shutil.ignore_patterns(".lock", "export"))
    config = json.loads((old / CONFIG).read_text())
    del config["data"]
    (old / CONFIG).write_text(json.dumps(config))
    assert open_run(old).data_record is None
    argv = ["individual", "--run-dir", str(old), "--tasks", "1", "--shot", "2", *QUICK]
    assert main(argv) == 0
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "its class division is unverified" in err[0]


def test_without_a_run_or_its_data_auto_polarity_asks_for_yes_or_no(
    folder_run, episodes_dir, tmp_path, capsys, monkeypatch
):
    monkeypatch.delenv("LEARNGENE_DATA", raising=False)
    run_dir, _ = folder_run
    gene = tmp_path / "gene.safetensors"
    assert main(["extract", "--run-dir", str(run_dir), "--layers", "conv3-conv4", "--out", str(gene)]) == 0
    capsys.readouterr()
    argv = ["individual", "--learngene", str(gene), "--target-dataset", "episodes", "--target-root", str(episodes_dir)]
    err = _one_line_exit_2([*argv, *QUICK], capsys)
    assert "training images' background is unknown (imagefolder needs a folder)" in err and "yes or no" in err
    result, _ = run_json([*argv, "--invert", "yes", "--json", *QUICK], capsys)
    assert result["target"]["polarity"] == {
        "invert": "yes",
        "inverted": True,
        "target_background": 1.0,
        "training_background": None,
    }
