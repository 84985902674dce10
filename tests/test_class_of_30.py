"""A class on one server: tutorial 04's shapes are drawn once, whoever asks; five students running notebook 01 at
once against one shared engine get one training that all of them follow, with progress, and none gets an error; a
kernel whose run another process trains outside the engine waits for it and says how far it is."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
import time

import pytest
from conftest import REPO

from core.collective.config import preset
from core.collective.locking import writer_active
from core.collective.runs import open_run
from core.data.shapes import MANIFEST, PER_CLASS, SHAPE_CLASSES, ensure_shapes, shapes_complete
from core.errors import LearngeneError
from core.jobs.cluster import local_cluster
from core.jobs.workers import ADDRESS_VARIABLE
from core.tutorial.classroom import ClassRun, class_job, finished_run

STUDENTS = 5
TOUR = REPO / "notebooks" / "01_paradigm_tour.ipynb"


def snapshot(folder):
    """Every file under `folder` with its size and modification time."""
    return {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()}


def digest(folder):
    """sha256 over every file's relative path and bytes."""
    h = hashlib.sha256()
    for p in sorted(q for q in folder.rglob("*") if q.is_file()):
        h.update(str(p.relative_to(folder)).encode() + p.read_bytes())
    return h.hexdigest()


def test_the_shapes_are_drawn_once_and_a_complete_drawing_is_reused_without_a_write(tmp_path):
    folder = ensure_shapes(tmp_path / "shapes-images")
    assert sorted(p.name for p in folder.iterdir() if p.is_dir()) == sorted(SHAPE_CLASSES)
    assert all(len(list((folder / c).glob("*.png"))) == PER_CLASS for c in SHAPE_CLASSES)
    before = snapshot(folder)
    assert ensure_shapes(folder) == folder
    assert snapshot(folder) == before  # not one file rewritten
    assert [p.name for p in tmp_path.iterdir()] == ["shapes-images"]  # no drawing folder left beside it


def test_the_drawing_is_the_same_for_a_seed_and_differs_for_another(tmp_path):
    one, two = ensure_shapes(tmp_path / "a"), ensure_shapes(tmp_path / "b")
    assert digest(one) == digest(two)
    other = ensure_shapes(tmp_path / "c", seed=1)
    assert (other / SHAPE_CLASSES[0] / "000.png").read_bytes() != (one / SHAPE_CLASSES[0] / "000.png").read_bytes()
    assert not shapes_complete(other, seed=0) and shapes_complete(other, seed=1)


def test_a_partial_or_older_folder_is_replaced_by_a_complete_drawing(tmp_path):
    folder = tmp_path / "shapes-images"
    (folder / SHAPE_CLASSES[0]).mkdir(parents=True)
    (folder / SHAPE_CLASSES[0] / "000.png").write_bytes(b"half")  # e.g. a kernel stopped while drawing
    ensure_shapes(folder)
    assert shapes_complete(folder)
    assert digest(folder) == digest(ensure_shapes(tmp_path / "fresh"))
    (folder / SHAPE_CLASSES[3] / "007.png").unlink()  # a file lost afterwards: no longer complete
    assert not shapes_complete(folder)
    (folder / MANIFEST).write_text("{}")
    assert not shapes_complete(folder)


def test_five_processes_drawing_at_once_leave_one_complete_folder(tmp_path):
    folder = tmp_path / "shapes-images"
    code = f"from core.data.shapes import ensure_shapes; ensure_shapes({str(folder)!r})"
    procs = [subprocess.Popen([sys.executable, "-c", code], cwd=REPO) for _ in range(STUDENTS)]
    assert [p.wait(timeout=300) for p in procs] == [0] * STUDENTS
    assert shapes_complete(folder)
    assert digest(folder) == digest(ensure_shapes(tmp_path / "alone"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alone", "shapes-images"]


def test_a_run_with_other_settings_is_refused_by_name(smoke_run):
    assert finished_run(smoke_run, preset("smoke", dataset="glyphs", seed=0)) is not None
    with pytest.raises(LearngeneError, match=r"other settings \(lr\)"):
        finished_run(smoke_run, preset("smoke", dataset="glyphs", seed=0, lr=0.5))


# One student's kernel: notebook 01's setup and data cells, then its training cell once every student is ready.
STUDENT = textwrap.dedent(
    """
    import contextlib, io, json, pathlib, sys, time
    import nbformat
    cells = [c.source for c in nbformat.read(sys.argv[1], as_version=4).cells if c.cell_type == "code"]
    training = next(i for i, source in enumerate(cells) if "collective_run(" in source)
    names = {}
    with contextlib.redirect_stdout(io.StringIO()):
        for source in cells[:training]:
            exec(source, names)
    pathlib.Path(sys.argv[2]).touch()
    while not pathlib.Path(sys.argv[3]).exists():
        time.sleep(0.05)
    asked = time.monotonic()
    exec(cells[training], names)
    print(json.dumps({"waited": time.monotonic() - asked}))
    """
)


@pytest.fixture(scope="module")
def shared_engine_address():
    """A 2-worker LocalCluster standing for the class server's engine (`explorer.server`); its scheduler address."""
    cluster = local_cluster(2, dashboard=False)
    yield cluster.scheduler_address
    cluster.close()


def executions(address: str, key: str) -> int:
    """How many times the scheduler ran the task of `key` to its result."""
    from distributed import Client

    with Client(address, timeout="30s") as client:
        story = client.run_on_scheduler(lambda dask_scheduler: [list(t) for t in dask_scheduler.story(key)])
    return sum(1 for entry in story if entry[0] == key and entry[2] == "memory")


def run_students(address: str, folder, preset_name: str, students: int = STUDENTS) -> list[tuple[int, str, str]]:
    """`students` processes run notebook 01's setup cells, then its training cell together against the engine at
    `address` (runs under folder/runs); each one's exit code, output and errors."""
    gate = folder / "go"
    env = dict(
        os.environ,
        LEARNGENE_RUNS=str(folder / "runs"),
        LEARNGENE_TUTORIAL_PRESET=preset_name,
        OMP_NUM_THREADS="1",
        PYTHONPATH=str(REPO),
        **{ADDRESS_VARIABLE: address},
    )
    env.pop("LEARNGENE_PAGE_THREADS", None)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", STUDENT, str(TOUR), str(folder / f"ready-{i}"), str(gate)],
            cwd=folder,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(students)
    ]
    deadline = time.monotonic() + 300
    while not all((folder / f"ready-{i}").exists() for i in range(students)) and time.monotonic() < deadline:
        assert all(p.poll() is None for p in procs), [p.communicate()[1] for p in procs if p.poll() is not None]
        time.sleep(0.1)
    gate.touch()  # every kernel runs the training cell now
    outputs = [p.communicate(timeout=3600) for p in procs]
    return [(p.returncode, out, err) for p, (out, err) in zip(procs, outputs)]


def waits(results: list[tuple[int, str, str]]) -> list[float]:
    """Each student's seconds in the training cell, shortest first."""
    return sorted(json.loads(out.strip().splitlines()[-1])["waited"] for _, out, _ in results)


def test_five_students_running_notebook_01_at_once_get_one_training_that_each_follows(shared_engine_address, tmp_path):
    results = run_students(shared_engine_address, tmp_path, "smoke")
    assert [code for code, _, _ in results] == [0] * STUDENTS, [err for _, _, err in results]
    runs = tmp_path / "runs"
    config = preset("smoke", dataset="glyphs", seed=0)
    job = class_job(ClassRun("smoke-glyphs", config), threads=1)
    assert executions(shared_engine_address, job.key) == 1  # five asks, one job on the engine
    run = open_run(runs / "smoke-glyphs")
    assert run.complete
    task_rows = [m["task"] for m in run.metrics() if m["kind"] == "task"]
    assert task_rows == list(range(config.tasks))  # trained once: one row per task
    for _, out, _ in results:
        assert "is in use by another process" not in out
        assert "smoke-glyphs: ready" in out  # waited for the training, not found it finished
        assert f"/{config.tasks}: train accuracy" in out  # and followed its progress meanwhile
    seconds = waits(results)
    print(
        f"\n{STUDENTS} kernels ran notebook 01's training cell at once on a 2-worker engine: waits "
        f"{', '.join(f'{w:.1f}' for w in seconds)} s; the fifth waited {seconds[-1]:.1f} s for the one training"
    )


KERNEL = textwrap.dedent(
    """
    import sys
    from core.collective.config import preset
    from core.tutorial.classroom import collective_run
    run = collective_run(preset("smoke", dataset="glyphs", seed=0), sys.argv[2], runs=sys.argv[1], say=print)
    print("complete" if run.complete else "incomplete")
    """
)


def test_a_kernel_waits_for_a_run_that_a_process_outside_the_engine_trains_and_says_how_far_it_is(
    shared_engine_address, tmp_path
):
    runs, name = tmp_path / "runs", "smoke-glyphs"
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", **{ADDRESS_VARIABLE: shared_engine_address})
    command = [sys.executable, "-m", "core.cli", "collective", "--preset", "smoke", "--dataset", "glyphs"]
    outside = subprocess.Popen(
        [*command, "--run-dir", str(runs / name), "--threads", "1", "--quiet"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not writer_active(runs / name):
        assert outside.poll() is None and time.monotonic() < deadline, outside.stderr.read()
        time.sleep(0.05)
    kernel = subprocess.run(
        [sys.executable, "-c", KERNEL, str(runs), name], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert outside.wait(timeout=60) == 0 and kernel.returncode == 0, kernel.stderr
    said = kernel.stdout.splitlines()
    assert said[0] == f"{name}: another process is training it; waiting for it" and said[-1] == "complete"
    assert any(line.endswith("tasks finished") for line in said)  # its progress, read from the run's files
    config = preset("smoke", dataset="glyphs", seed=0)
    run = open_run(runs / name)
    assert [m["task"] for m in run.metrics() if m["kind"] == "task"] == list(range(config.tasks))  # trained once
