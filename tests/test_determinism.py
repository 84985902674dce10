"""Numbers depend on the config and seed only: the caller decides the thread count, the run records it and keeps it
on resume, torch's count is restored afterwards, and identical content gives byte-identical files."""

import csv
import hashlib
import json
import struct
import time

import pytest
import torch

from core.checkpoint import tensor_bytes
from core.cli.main import main
from core.cli.messages import line
from core.collective.config import preset
from core.collective.criterion import CriterionLog
from core.collective.runs import open_run
from core.collective.training import train_collective
from core.errors import LearngeneError
from core.events import Cancelled, TaskFinished
from core.learngene.extraction import extract
from core.learngene.gene import save
from core.learngene.selection import select_for_run
from core.threads import torch_threads

TINY = {"tasks": 2, "epochs": 1}


def other_count() -> int:
    """A thread count other than torch's current one."""
    return 1 if torch.get_num_threads() != 1 else 2


def digests(folder):
    """sha256 of every file under `folder` by relative path; the lock file is empty and left out."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }


def stop_after_first_task(seen):
    return lambda: any(isinstance(e, TaskFinished) for e in seen)


def test_two_identical_runs_and_extractions_write_byte_identical_files(tmp_path):
    for name in ("a", "b"):
        train_collective(preset("smoke", **TINY), tmp_path / name, threads=1)
    first, second = digests(tmp_path / "a"), digests(tmp_path / "b")
    assert len(first) == 6 and first == second  # config, manifest, criterion, metrics, two checkpoints
    run = open_run(tmp_path / "a")
    genes = [save(extract(run, select_for_run(run)), tmp_path / f"gene{i}.safetensors") for i in range(3)]
    assert len({hashlib.sha256(p.read_bytes()).hexdigest() for p in genes}) == 1


def test_tensor_files_hold_sorted_metadata_and_the_same_bytes_whatever_the_key_order():
    tensors = {"w": torch.arange(6.0).reshape(2, 3), "n": torch.tensor([3], dtype=torch.int64)}
    keys = ["task", "spec", "zeta", "alpha", "name"]
    files = {tensor_bytes(tensors, {k: f"value of {k}" for k in keys[i:] + keys[:i]}) for i in range(len(keys))}
    files |= {tensor_bytes(tensors, {k: f"value of {k}" for k in keys}) for _ in range(10)}
    assert len(files) == 1
    data = files.pop()
    header_len = struct.unpack("<Q", data[:8])[0]
    assert header_len % 8 == 0
    assert list(json.loads(data[8 : 8 + header_len])["__metadata__"]) == sorted(keys)


def test_criterion_files_carry_no_clock(tmp_path, monkeypatch):
    log = CriterionLog.empty(("conv1", "fc1"), 1e-3, 2)
    written = []
    for now in (1.0e9, 1.7e9):
        monkeypatch.setattr(time, "time", lambda now=now: now)
        log.save(tmp_path / "criterion.npz")
        written.append((tmp_path / "criterion.npz").read_bytes())
    assert written[0] == written[1]
    assert CriterionLog.load(tmp_path / "criterion.npz").layer_names == ("conv1", "fc1")


def test_training_uses_and_records_the_callers_thread_count_and_restores_torchs(tmp_path):
    before, chosen = torch.get_num_threads(), other_count()
    during = []
    train_collective(
        preset("smoke", **TINY),
        tmp_path / "r",
        threads=chosen,
        listeners=[lambda e: during.append(torch.get_num_threads())],
    )
    assert set(during) == {chosen} and torch.get_num_threads() == before
    assert json.loads((tmp_path / "r" / "config.json").read_text())["threads"] == chosen
    assert open_run(tmp_path / "r").threads == chosen
    train_collective(preset("smoke", **TINY), tmp_path / "default")
    assert open_run(tmp_path / "default").threads == before  # None: torch's current count


def test_torchs_thread_count_is_restored_when_training_stops_or_fails(tmp_path):
    before, seen = torch.get_num_threads(), []
    with pytest.raises(Cancelled):
        train_collective(
            preset("smoke", **TINY),
            tmp_path / "r",
            threads=other_count(),
            listeners=[seen.append],
            should_stop=stop_after_first_task(seen),
        )
    assert torch.get_num_threads() == before
    with pytest.raises(ZeroDivisionError), torch_threads(other_count()):
        raise ZeroDivisionError
    assert torch.get_num_threads() == before


def test_resuming_with_another_thread_count_is_refused_in_one_line_and_without_it_keeps_the_runs(tmp_path, capsys):
    seen, config, run_dir = [], preset("smoke", **TINY), tmp_path / "r"
    with pytest.raises(Cancelled):
        train_collective(config, run_dir, threads=1, listeners=[seen.append], should_stop=stop_after_first_task(seen))
    before = {p.name: p.stat().st_mtime_ns for p in run_dir.rglob("*") if p.is_file() and p.name != ".lock"}
    with pytest.raises(LearngeneError) as refused:
        train_collective(config, run_dir, resume=True, threads=2)
    assert "trained with 1 thread; --threads 2 would change its numbers: resume" in line(refused.value)
    args = ["collective", "--preset", "smoke", "--tasks", "2", "--epochs", "1", "--run-dir", str(run_dir)]
    assert main([*args, "--resume", "--threads", "2", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "with 1 thread; --threads 2" in err and "--threads 1" in err
    assert {p.name: p.stat().st_mtime_ns for p in run_dir.rglob("*") if p.is_file() and p.name != ".lock"} == before
    during = []
    train_collective(config, run_dir, resume=True, listeners=[lambda e: during.append(torch.get_num_threads())])
    assert set(during) == {1} and open_run(run_dir).complete and open_run(run_dir).threads == 1


def test_a_run_from_before_thread_counts_resumes_with_any_count(tmp_path):
    seen, config, run_dir = [], preset("smoke", **TINY), tmp_path / "r"
    with pytest.raises(Cancelled):
        train_collective(config, run_dir, threads=1, listeners=[seen.append], should_stop=stop_after_first_task(seen))
    doc = json.loads((run_dir / "config.json").read_text())
    del doc["threads"]
    (run_dir / "config.json").write_text(json.dumps(doc))
    assert open_run(run_dir).threads is None
    assert train_collective(config, run_dir, resume=True, threads=2).complete
    assert "threads" not in json.loads((run_dir / "config.json").read_text())


def test_a_damaged_thread_count_is_refused_by_name(tmp_path):
    train_collective(preset("smoke", tasks=1, epochs=1), tmp_path / "r", threads=1)
    doc = json.loads((tmp_path / "r" / "config.json").read_text())
    (tmp_path / "r" / "config.json").write_text(json.dumps(dict(doc, threads="two")))
    with pytest.raises(LearngeneError, match="thread count 'two' is not a whole number"):
        open_run(tmp_path / "r")


def test_collective_and_individual_results_record_their_thread_count(short_run, tmp_path, capsys):
    before, chosen = torch.get_num_threads(), other_count()
    again = ["collective", "--preset", "smoke", "--tasks", "3", "--epochs", "2", "--run-dir", str(short_run)]
    assert main([*again, "--json", "--quiet"]) == 0
    assert json.loads(capsys.readouterr().out)["threads"] == open_run(short_run).threads
    out_json, out_csv = tmp_path / "r.json", tmp_path / "r.csv"
    args = ["individual", "--run-dir", str(short_run), "--tasks", "1", "--epochs", "1", "--quiet"]
    assert main([*args, "--threads", str(chosen), "--out-json", str(out_json), "--out-csv", str(out_csv)]) == 0
    assert torch.get_num_threads() == before
    assert json.loads(out_json.read_text())["setup"]["threads"] == chosen
    rows = list(csv.DictReader(out_csv.open()))
    assert rows and {row["threads"] for row in rows} == {str(chosen)}
