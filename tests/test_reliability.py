"""Reliability round 2: readers during commits, interrupts, output paths, memory caps, links, and messages."""

import errno
import hashlib
import io
import json
import math
import os
import pathlib
import random
import re
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_run_mutations import run_cli, snapshot

from core.cli import stopping
from core.cli.progress import CollectiveBar
from core.collective.histogram import BIN_EDGES
from core.collective.runs import open_run
from core.data.image_io import decode_square
from core.errors import LearngeneError


def test_a_reader_during_commits_sees_one_committed_state_never_a_corruption(tmp_path):
    run_dir = tmp_path / "live"
    writer = subprocess.Popen(
        [sys.executable, "-m", "core.cli", "collective", "--preset", "smoke", "--tasks", "8", "--epochs", "1"]
        + ["--run-dir", str(run_dir), "--quiet"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    rng = random.Random(0)
    reads, failures = 0, []
    while writer.poll() is None:
        if not (run_dir / "manifest.json").exists():
            time.sleep(0.01)
            continue
        try:
            run = open_run(run_dir)
            if run.finished_tasks == 0:
                continue
            time.sleep(rng.uniform(0, 0.08))
            log, rows = run.criterion(), run.metrics()
        except LearngeneError as exc:
            failures.append(str(exc))
            continue
        reads += 1
        task_rows = [r["task"] for r in rows if r["kind"] == "task"]
        assert log.tasks == run.finished_tasks and task_rows == list(range(run.finished_tasks))
        assert sorted(run.manifest["specs"], key=int) == [str(t) for t in range(run.finished_tasks)]
    assert writer.returncode == 0, writer.stderr.read().decode()[-2000:]
    assert failures == [] and reads >= 10, (reads, failures[:3])
    assert json.loads((run_dir / "manifest.json").read_text())["finished_tasks"] == 8


def wait_for_line(proc, needle: str, timeout: float = 120) -> list[str]:
    """Lines of proc's stderr up to the first that contains `needle`."""
    lines, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stderr.readline().decode()
        if not line:
            break
        lines.append(line)
        if needle in line:
            return lines
    raise AssertionError(f"{needle!r} never appeared: {''.join(lines)[-2000:]}")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupting_individual_writes_the_finished_target_tasks_marked_partial(smoke_run, tmp_path, sig):
    out_json, out_csv = tmp_path / "r.json", tmp_path / "r.csv"
    proc = subprocess.Popen(
        [sys.executable, "-m", "core.cli", "individual", "--run-dir", str(smoke_run), "--tasks", "30"]
        + ["--epochs", "5", "--out-json", str(out_json), "--out-csv", str(out_csv)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    wait_for_line(proc, "target task 2/30")
    proc.send_signal(sig)
    rest = proc.communicate(timeout=60)[1].decode().strip().splitlines()
    assert proc.returncode == 128 + sig and "partial" in rest[-1] and "Traceback" not in "".join(rest), rest[-3:]
    result = json.loads(out_json.read_text())
    assert result["partial"] is True
    done = [row for row in result["rows"] if row["task_accuracies"]]
    assert done and done[-1]["partial"] is True and 2 <= len(done[-1]["task_accuracies"]) < 30
    assert all(0 <= a <= 1 for a in done[-1]["task_accuracies"])
    assert "partial" in out_csv.read_text().splitlines()[0]


def test_sigterm_stops_collective_like_ctrl_c_and_the_run_resumes(tmp_path):
    run_dir = tmp_path / "r"
    argv = [sys.executable, "-m", "core.cli", "collective", "--preset", "smoke", "--tasks", "3", "--epochs", "30"]
    argv += ["--run-dir"]
    proc = subprocess.Popen(argv + [str(run_dir)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not (run_dir / "manifest.json").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    err = proc.communicate(timeout=60)[1].decode().strip().splitlines()
    assert proc.returncode == 128 + signal.SIGTERM and "--resume" in err[-1], err[-3:]
    assert "Traceback" not in "".join(err)
    assert open_run(run_dir).finished_tasks < 3


def test_a_sigterm_whose_interrupt_is_lost_in_a_finaliser_still_stops_at_the_next_check(monkeypatch):
    monkeypatch.setattr(sys, "unraisablehook", lambda unraisable: None)
    previous = stopping.stop_on_sigterm()
    try:

        class SignalledWhileFinalised:
            def __del__(self):
                os.kill(os.getpid(), signal.SIGTERM)
                sum(range(10_000))  # the handler runs in here, and Python drops its KeyboardInterrupt

        SignalledWhileFinalised()
        assert stopping.received == [signal.SIGTERM]
        with pytest.raises(KeyboardInterrupt):
            stopping.raise_if_stopped()
    finally:
        stopping.restore(previous)


def test_collective_stops_with_143_when_the_signal_was_recorded_but_its_interrupt_lost(tmp_path, monkeypatch, capsys):
    class LosesTheInterrupt(CollectiveBar):
        def __call__(self, event):
            stopping.received.append(signal.SIGTERM)  # as the handler does, without the exception it would raise
            super().__call__(event)

    monkeypatch.setattr("core.cli.progress.CollectiveBar", LosesTheInterrupt)
    run_dir = tmp_path / "r"
    code, err = run_cli(
        ["collective", "--preset", "smoke", "--tasks", "3", "--run-dir", str(run_dir), "--quiet"], capsys
    )
    assert code == 128 + signal.SIGTERM and "--resume" in err, err
    assert open_run(run_dir).finished_tasks < 3


@pytest.mark.parametrize(
    "argv",
    [
        ["extract", "--layers", "conv2-conv3", "--out", "{run}/config.json"],
        ["extract", "--layers", "conv2-conv3", "--out", "{run}/checkpoints/task_000.safetensors"],
        ["extract", "--layers", "conv2-conv3", "--out", "{run}/gene.safetensors"],
        ["individual", "--tasks", "1", "--epochs", "1", "--out-json", "{run}/manifest.json"],
        ["individual", "--tasks", "1", "--epochs", "1", "--out-csv", "{run}/metrics.jsonl"],
    ],
)
def test_an_output_path_inside_a_run_outside_its_export_folder_is_refused(smoke_run, tmp_path, capsys, argv):
    run_dir = tmp_path / "run"
    shutil.copytree(smoke_run, run_dir)
    before = snapshot(run_dir)
    code, err = run_cli(
        [a.replace("{run}", str(run_dir)) for a in argv[:1] + ["--run-dir", "{run}"] + argv[1:]], capsys
    )
    assert code == 2 and len(err.splitlines()) == 1 and "inside the run directory" in err, err
    assert snapshot(run_dir) == before


def test_an_output_in_the_runs_export_folder_is_written(smoke_run, tmp_path, capsys):
    run_dir = tmp_path / "run"
    shutil.copytree(smoke_run, run_dir)
    target = run_dir / "export" / "gene.safetensors"
    code, err = run_cli(["extract", "--run-dir", str(run_dir), "--layers", "conv2-conv3", "--out", str(target)], capsys)
    assert code == 0 and target.is_file(), err


MEMORY_PROBE = """
import resource, sys, zipfile
from pathlib import Path
from core.data import omniglot
from core.errors import LearngeneError

root = Path(sys.argv[1])
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    omniglot.load(root, image_size=16)
    outcome = "loaded"
except LearngeneError as exc:
    outcome = str(exc)
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) // 1024)
print(outcome)
"""


def test_an_omniglot_zip_bomb_is_refused_by_name_without_inflating_it(tmp_path):
    root = tmp_path / "omniglot"
    root.mkdir()
    with zipfile.ZipFile(root / "images_background.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("images_background/Alpha/character01/0001_01.png", "w") as member:
            chunk = bytes(1 << 20)
            for _ in range(512):
                member.write(chunk)
    assert (root / "images_background.zip").stat().st_size < 1 << 20
    probe = subprocess.run([sys.executable, "-c", MEMORY_PROBE, str(tmp_path)], capture_output=True, timeout=300)
    grown_mib, outcome = probe.stdout.decode().splitlines()
    assert int(grown_mib) < 100, f"decoding grew the process by {grown_mib} MiB"
    assert "0001_01.png" in outcome and "MiB" in outcome, outcome


def test_an_image_above_the_pixel_cap_is_refused_by_name_before_it_is_decoded(tmp_path):
    path = tmp_path / "huge.png"
    Image.new("L", (6000, 6000)).save(path)
    with pytest.raises(LearngeneError, match="huge.png is 6000x6000 pixels"):
        decode_square(path, str(path), 32, 1)
    Image.new("L", (4000, 4000)).save(tmp_path / "ok.png")
    assert decode_square(tmp_path / "ok.png", "ok.png", 32, 1).shape == (1, 32, 32)


def test_a_fifo_named_png_in_the_omniglot_folder_layout_is_skipped_not_waited_on(tmp_path):
    folder = tmp_path / "omniglot-py" / "images_background" / "Alpha" / "character01"
    folder.mkdir(parents=True)
    for drawer in range(2):
        Image.new("L", (105, 105), 255).save(folder / f"0{drawer}.png")
    os.mkfifo(folder / "09.png")
    probe = subprocess.run([sys.executable, "-c", MEMORY_PROBE, str(tmp_path)], capture_output=True, timeout=120)
    assert probe.stdout.decode().splitlines()[1] == "loaded", probe.stderr.decode()[-2000:]


def test_a_class_with_too_few_images_is_named_and_no_missing_option_is_suggested(tmp_path, capsys):
    for c in range(12):
        for i in range(1 if c == 7 else 12):
            folder = tmp_path / "images" / f"class{c:02d}"
            folder.mkdir(parents=True, exist_ok=True)
            Image.new("L", (12, 12), 20 * c + i).save(folder / f"{i}.png")
    argv = ["collective", "--preset", "smoke", "--dataset", "imagefolder", "--root", str(tmp_path / "images")]
    code, err = run_cli(argv + ["--run-dir", str(tmp_path / "run"), "--quiet"], capsys)
    assert code == 2 and len(err.splitlines()) == 1, err
    assert "'class07'" in err and "has 1 images" in err and "--images-per-class" not in err


def with_committed(run_dir, name, data: bytes) -> None:
    """Replace a committed file and its digest in the manifest: a consistent edit only validation can catch."""
    (run_dir / name).write_bytes(data)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    manifest["files"][name] = hashlib.sha256(data).hexdigest()
    (run_dir / "manifest.json").write_text(json.dumps(manifest))


def criterion_bytes(log) -> bytes:
    buffer = io.BytesIO()
    np.savez(
        buffer,
        format=np.int64(1),
        bin_edges=BIN_EDGES,
        layer_names=np.array(log.layer_names, dtype=np.str_),
        tau=np.float64(log.tau),
        epochs=np.int64(log.epochs),
        **{name: getattr(log, name) for name in ("signed", "absolute", "hist", "grad_norm", "recorded")},
    )
    return buffer.getvalue()


@pytest.mark.parametrize("damage", ["all NaN", "layers of another network", "tau NaN"])
def test_a_criterion_that_does_not_fit_its_run_is_reported_as_damaged_not_as_unfinished(
    smoke_run, tmp_path, capsys, damage
):
    run_dir = tmp_path / "run"
    shutil.copytree(smoke_run, run_dir)
    log = open_run(run_dir).criterion()
    if damage == "all NaN":
        for name in ("signed", "absolute", "hist", "grad_norm"):
            getattr(log, name)[...] = np.nan
    elif damage == "layers of another network":
        keep = [i for i, n in enumerate(log.layer_names) if n in ("conv1", "fc1", "fc2")]
        log.layer_names = tuple(log.layer_names[i] for i in keep)
        for name in ("signed", "absolute", "hist", "grad_norm"):
            setattr(log, name, getattr(log, name)[:, :, keep])
    else:
        log.tau = math.nan
    with_committed(run_dir, "criterion.npz", criterion_bytes(log))
    code, err = run_cli(["extract", "--run-dir", str(run_dir), "--out", str(tmp_path / "g.safetensors")], capsys)
    assert code == 2 and len(err.splitlines()) == 1 and "criterion.npz" in err, err
    assert "no finished task" not in err and "--top-k" not in err


def test_a_full_disk_names_the_file_being_written(smoke_run, tmp_path, capsys, monkeypatch):
    def full(self, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(pathlib.Path, "write_bytes", full)
    out = tmp_path / "gene.safetensors"
    code, err = run_cli(["extract", "--run-dir", str(smoke_run), "--layers", "conv2-conv3", "--out", str(out)], capsys)
    assert code == 2 and len(err.splitlines()) == 1 and f"{out}: No space left on device" in err, err
    assert not out.exists() and not list(tmp_path.iterdir())


@pytest.fixture
def read_only_run(smoke_run, tmp_path):
    """A copy of the smoke run on read-only media: a read-only tmpfs (as root), else a folder without write access."""
    mount = tmp_path / "media"
    mount.mkdir()
    if os.geteuid() == 0:
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mount)]).returncode != 0:
            pytest.skip("cannot mount a tmpfs here to make read-only media")
        shutil.copytree(smoke_run, mount / "run")
        subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
        yield mount / "run"
        subprocess.run(["umount", str(mount)], check=True)
    else:
        shutil.copytree(smoke_run, mount / "run")
        (mount / "run" / ".lock").unlink(missing_ok=True)
        for path in [mount / "run", *(mount / "run").rglob("*")]:
            path.chmod(path.stat().st_mode & ~0o222)
        yield mount / "run"
        for path in [mount / "run", *(mount / "run").rglob("*")]:
            path.chmod(path.stat().st_mode | 0o200)


def test_a_finished_run_on_read_only_media_is_reused_and_read(read_only_run, capsys):
    before = snapshot(read_only_run)
    code, err = run_cli(["collective", "--preset", "smoke", "--run-dir", str(read_only_run), "--quiet"], capsys)
    assert code == 0, err
    assert run_cli(["criterion", "--run-dir", str(read_only_run)], capsys)[0] == 0
    code, err = run_cli(["collective", "--preset", "smoke", "--tasks", "4", "--run-dir", str(read_only_run)], capsys)
    assert code == 2 and "other settings" in err
    assert snapshot(read_only_run) == before


def test_every_test_the_guarantees_name_exists():
    section = (Path(__file__).resolve().parents[1] / "docs" / "guarantees.md").read_text()
    named = set(re.findall(r"`(test_\w+)`", section))
    sources = "\n".join(p.read_text() for p in Path(__file__).parent.glob("test_*.py"))
    assert len(named) > 40 and not [n for n in sorted(named) if f"def {n}(" not in sources]
