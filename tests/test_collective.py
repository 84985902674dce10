"""The collective stage: a smoke run leaves a complete run directory, resumes exactly, and refuses bad states."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from conftest import SHORT, SHORT_ARGS

from core.atomic import leftover_temporaries
from core.cli.main import main
from core.cli.messages import line
from core.collective.config import preset
from core.collective.locking import RunLock
from core.collective.runs import open_run
from core.collective.training import CollectiveTrainer, train_collective
from core.errors import LearngeneError
from core.events import Cancelled, EpochEnded, TaskFinished


def final_state(run_dir):
    return open_run(run_dir).load_net().state_dict()


def test_smoke_run_leaves_config_checkpoints_criterion_and_metrics(smoke_run):
    run = open_run(smoke_run)
    assert run.complete and run.finished_tasks == run.config.tasks == 34
    for t in range(run.config.tasks):
        assert (smoke_run / "checkpoints" / f"task_{t:03d}.safetensors").is_file()
    config = json.loads((smoke_run / "config.json").read_text())
    assert config["config"]["seed"] == 0 and "torch" in config["versions"]
    rows = run.metrics()
    assert sum(r["kind"] == "epoch" for r in rows) == run.config.tasks * run.config.epochs
    assert [r["widths"] for r in rows if r["kind"] == "task"][-1] == {"conv1": 8, "conv2": 12, "conv3": 24, "conv4": 16}


def test_criterion_cli_prints_one_value_in_unit_interval_per_layer_and_task(short_run, capsys):
    smoke_run = short_run
    assert main(["criterion", "--run-dir", str(smoke_run), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["layers"][:4] == ["conv1", "conv2", "conv3", "conv4"] and out["tasks"] == [0, 1, 2]
    values = np.array(out["values"], dtype=float)
    assert values.shape == (len(out["layers"]), 3)
    assert np.all((values >= 0) & (values <= 1))
    log = open_run(smoke_run).criterion()
    np.testing.assert_array_equal(values, log.per_task().T)
    for option, tau, absolute in ((["--tau", "1e-6"], 1e-6, False), (["--absolute"], None, True)):
        assert main(["criterion", "--run-dir", str(smoke_run), *option, "--json"]) == 0
        changed = np.array(json.loads(capsys.readouterr().out)["values"], dtype=float)
        np.testing.assert_allclose(changed, log.per_task(tau, absolute=absolute).T, rtol=1e-12)
        assert not np.allclose(changed, values), option


def test_finished_run_with_same_config_is_reused_at_once(smoke_run):
    before = (smoke_run / "manifest.json").stat().st_mtime_ns
    events = []
    run = train_collective(preset("smoke"), smoke_run, listeners=[events.append])
    assert run.complete and events == []
    assert (smoke_run / "manifest.json").stat().st_mtime_ns == before


def test_same_seed_gives_the_same_weights_and_a_different_config_is_refused(short_run, tmp_path):
    train_collective(preset("smoke", **SHORT), tmp_path / "again")
    a, b = final_state(short_run), final_state(tmp_path / "again")
    assert all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(LearngeneError, match="other settings \\(seed\\)"):
        train_collective(preset("smoke", seed=1, **SHORT), short_run)


def test_resume_after_cancel_gives_the_weights_of_an_uninterrupted_run(short_run, tmp_path):
    seen = []

    def stop_after_first_task():
        return any(isinstance(e, TaskFinished) for e in seen)

    short = preset("smoke", **SHORT)

    with pytest.raises(Cancelled):
        train_collective(short, tmp_path / "r", listeners=[seen.append], should_stop=stop_after_first_task)
    assert open_run(tmp_path / "r").finished_tasks == 1
    with pytest.raises(LearngeneError) as interrupted:
        train_collective(short, tmp_path / "r")
    assert "pass --resume to continue it" in line(interrupted.value)
    resumed = []
    train_collective(short, tmp_path / "r", resume=True, listeners=[resumed.append])
    assert min(e.task for e in resumed if isinstance(e, EpochEnded)) == 1
    a, b = final_state(short_run), final_state(tmp_path / "r")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert np.array_equal(open_run(short_run).criterion().hist, open_run(tmp_path / "r").criterion().hist)


def test_kill_9_mid_training_then_resume_finishes_with_the_uninterrupted_result(tmp_path):
    run_dir = tmp_path / "killed"
    cmd = [
        sys.executable,
        "-m",
        "core.cli",
        "collective",
        "--preset",
        "smoke",
        "--tasks",
        "3",
        "--epochs",
        "6",
        "--run-dir",
        str(run_dir),
        "--quiet",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        manifest = run_dir / "manifest.json"
        if manifest.exists() and json.loads(manifest.read_text())["finished_tasks"] >= 1:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run ended before the kill"
    finished = open_run(run_dir).finished_tasks
    assert 1 <= finished < 3
    assert subprocess.run(cmd + ["--resume"], capture_output=True).returncode == 0
    reference = tmp_path / "reference"
    train_collective(preset("smoke", tasks=3, epochs=6), reference)
    a, b = final_state(reference), final_state(run_dir)
    assert all(torch.equal(a[k], b[k]) for k in a)


KILL_DURING_WRITE = """
import os, signal, sys
import core.checkpoint
from core.atomic import atomic_path
from core.cli.main import main

stage, victim = sys.argv[1], sys.argv[2]
real_write = core.checkpoint.write_bytes


def write_and_die(path, data):
    if os.path.basename(path) != victim:
        return real_write(path, data)
    if stage == "mid-write":
        with atomic_path(path) as tmp, open(tmp, "wb") as handle:
            handle.write(data[: len(data) // 2])
            handle.flush()
            os.kill(os.getpid(), signal.SIGKILL)
    real_write(path, data)
    os.kill(os.getpid(), signal.SIGKILL)


core.checkpoint.write_bytes = write_and_die
sys.exit(main(sys.argv[3:]))
"""


@pytest.mark.parametrize("stage", ["mid-write", "after-rename-before-manifest"])
def test_kill_9_during_a_checkpoint_write_then_resume_finishes_with_the_uninterrupted_result(
    short_run, tmp_path, stage
):
    smoke_run = short_run
    run_dir = tmp_path / "killed"
    argv = ["collective", "--preset", "smoke", *SHORT_ARGS, "--run-dir", str(run_dir), "--quiet"]
    killed = subprocess.run(
        [sys.executable, "-c", KILL_DURING_WRITE, stage, "task_001.safetensors", *argv], capture_output=True
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()[-2000:]
    checkpoints = run_dir / "checkpoints"
    if stage == "mid-write":
        assert leftover_temporaries(checkpoints) and not (checkpoints / "task_001.safetensors").exists()
    else:
        assert (checkpoints / "task_001.safetensors").exists() and not leftover_temporaries(checkpoints)
    run = open_run(run_dir)
    assert run.finished_tasks == 1
    run.load_net()

    resumed = subprocess.run([sys.executable, "-m", "core.cli", *argv, "--resume"], capture_output=True)
    assert resumed.returncode == 0, resumed.stderr.decode()[-2000:]
    a, b = final_state(smoke_run), final_state(run_dir)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert np.array_equal(open_run(smoke_run).criterion().hist, open_run(run_dir).criterion().hist)
    assert leftover_temporaries(checkpoints) == [] and leftover_temporaries(run_dir) == []
    on_disk = {f"checkpoints/{p.name}" for p in checkpoints.iterdir()}
    assert on_disk == {name for name in open_run(run_dir).manifest["files"] if name.startswith("checkpoints/")}


def test_a_second_process_on_the_same_run_directory_gets_a_clear_message(tmp_path):
    with RunLock(tmp_path / "busy"):
        with pytest.raises(LearngeneError, match="in use by another process"):
            train_collective(preset("smoke", **SHORT), tmp_path / "busy")


def test_corrupted_checkpoint_is_reported_with_its_name(smoke_run, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(smoke_run, copy)
    ckpt = copy / "checkpoints" / "task_002.safetensors"
    data = bytearray(ckpt.read_bytes())
    data[-10] ^= 0xFF
    ckpt.write_bytes(bytes(data))
    with pytest.raises(LearngeneError, match="task_002.safetensors is corrupted"):
        open_run(copy).load_net(2)


def test_absurd_learning_rate_stops_with_a_message_and_keeps_the_run_consistent(short_run, tmp_path, monkeypatch):
    with pytest.raises(LearngeneError, match="lower the learning rate"):
        train_collective(preset("smoke", lr=1e5, epochs=3), tmp_path / "at-once")
    assert open_run(tmp_path / "at-once").finished_tasks == 0
    assert not list((tmp_path / "at-once" / "checkpoints").glob("*.safetensors"))

    real = CollectiveTrainer._optimizer

    def absurd_from_task_1(self):
        optimizer = real(self)
        for group in optimizer.param_groups:
            group["lr"] = 1e5 if self._task == 1 else group["lr"]
        return optimizer

    monkeypatch.setattr(CollectiveTrainer, "_optimizer", absurd_from_task_1)
    with pytest.raises(LearngeneError, match="in task 1, .*finished tasks \\(1\\) stay saved"):
        train_collective(preset("smoke", **SHORT), tmp_path / "nan")
    run = open_run(tmp_path / "nan")
    assert run.finished_tasks == 1 and run.criterion().tasks == 1
    assert [r["task"] for r in run.metrics() if r["kind"] == "task"] == [0]
    run.load_net()
    monkeypatch.undo()
    train_collective(preset("smoke", **SHORT), tmp_path / "nan", resume=True)
    a, b = final_state(short_run), final_state(tmp_path / "nan")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_failed_write_leaves_the_previous_state_intact(tmp_path, monkeypatch):
    import errno

    import core.collective.runs

    calls = {"n": 0}
    real = core.collective.runs.write_json

    def failing_write(path, obj):
        if str(path).endswith("manifest.json") and obj.get("finished_tasks") == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        calls["n"] += 1
        return real(path, obj)

    monkeypatch.setattr(core.collective.runs, "write_json", failing_write)
    with pytest.raises(OSError):
        train_collective(preset("smoke", **SHORT), tmp_path / "full")
    run = open_run(tmp_path / "full")
    assert run.finished_tasks == 1
    run.load_net()
    assert run.criterion().per_task().shape[0] == 1


@pytest.mark.parametrize(
    "argv",
    [
        ["collective", "--run-dir", "x", "--tasks", "0"],
        ["collective", "--run-dir", "x", "--epochs", "abc"],
        ["collective", "--run-dir", "x", "--dataset", "mnist"],
        ["collective", "--run-dir", ""],
        ["collective", "--run-dir", "x", "--tau", "nan"],
        ["criterion", "--run-dir", "/nonexistent/run", "--json"],
    ],
)
def test_bad_cli_input_is_one_line_with_exit_code_2(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        sys.exit(main(argv))
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "error" in err and "Traceback" not in err


def test_a_commit_stopped_before_its_final_rename_still_reads_and_resumes(tmp_path, monkeypatch):
    import core.collective.runs

    monkeypatch.setattr(core.collective.runs, "settle_pending", lambda run: None)
    with pytest.raises(Cancelled):
        train_collective(
            preset("smoke", **SHORT),
            tmp_path / "p",
            should_stop=lambda: (tmp_path / "p" / "criterion.npz.pending").exists(),
        )
    assert not (tmp_path / "p" / "criterion.npz").exists()
    run = open_run(tmp_path / "p")
    assert run.finished_tasks == 1 and run.criterion().per_task().shape[0] == 1 and run.metrics()
    monkeypatch.undo()
    train_collective(preset("smoke", **SHORT), tmp_path / "p", resume=True)
    assert (tmp_path / "p" / "criterion.npz").exists() and not (tmp_path / "p" / "criterion.npz.pending").exists()


@pytest.mark.parametrize("name", ["criterion.npz", "metrics.jsonl"])
def test_truncated_criterion_or_metrics_file_is_reported_with_its_name(smoke_run, tmp_path, name):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(smoke_run, copy)
    target = copy / name
    target.write_bytes(target.read_bytes()[: target.stat().st_size // 2])
    run = open_run(copy)
    with pytest.raises(LearngeneError, match=f"{name} is corrupted"):
        run.criterion() if name.endswith(".npz") else run.metrics()
