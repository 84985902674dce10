"""Reliability round 2: readers during commits, interrupts, output paths, memory caps, links, and messages."""

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import zipfile

import pytest
from PIL import Image
from test_run_mutations import run_cli, snapshot

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
    argv = [sys.executable, "-m", "core.cli", "collective", "--preset", "smoke", "--epochs", "30", "--run-dir"]
    proc = subprocess.Popen(argv + [str(run_dir)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not (run_dir / "manifest.json").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    err = proc.communicate(timeout=60)[1].decode().strip().splitlines()
    assert proc.returncode == 128 + signal.SIGTERM and "--resume" in err[-1], err[-3:]
    assert "Traceback" not in "".join(err)
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
