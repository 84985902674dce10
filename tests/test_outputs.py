"""Output options never replace what they do not own: refusals leave the target as it was, - is standard output."""

from __future__ import annotations

import json
import os
import resource
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from core.atomic import leftover_temporaries, write_bytes
from core.cli.main import main
from core.errors import LearngeneError

ROOT = Path(__file__).resolve().parents[1]
QUICK = ["--tasks", "1", "--epochs", "1", "--quiet"]


def individual(run: Path, *extra: str) -> list[str]:
    return ["individual", "--run-dir", str(run), *QUICK, *extra]


def snapshot(folder: Path) -> dict[str, tuple]:
    """Every entry of `folder`: its kind, device number, link target or bytes, so any replacement shows."""
    found = {}
    for entry in sorted(folder.iterdir()):
        info = entry.lstat()
        if entry.is_symlink():
            content = os.readlink(entry)
        elif stat.S_ISREG(info.st_mode):
            content = entry.read_bytes()
        else:
            content = None
        found[entry.name] = (stat.S_IFMT(info.st_mode), info.st_ino, info.st_rdev, content)
    return found


def refused(argv: list[str], capsys) -> str:
    assert main(argv) == 2
    out = capsys.readouterr()
    assert out.out == "" and len(out.err.strip().splitlines()) == 1 and "Traceback" not in out.err
    return out.err


def make_fifo(path: Path) -> None:
    os.mkfifo(path)


def make_device(path: Path) -> None:
    os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # a null device of our own, never the system's


def make_symlink(path: Path) -> None:
    (path.parent / "target.json").write_text('{"kept": true}\n')
    path.symlink_to("target.json")


def make_folder(path: Path) -> None:
    path.mkdir()


@pytest.mark.parametrize(
    ("make", "what"),
    [
        (make_fifo, "is a FIFO"),
        (make_device, "is a character device"),
        (make_symlink, "is a symbolic link"),
        (make_folder, "is a folder"),
    ],
)
@pytest.mark.parametrize("option", ["--out-json", "--out-csv"])
def test_an_output_that_is_not_a_regular_file_is_refused_and_left_unchanged(
    short_run, tmp_path, capsys, make, what, option
):
    target = tmp_path / "out.json"
    make(target)
    before = snapshot(tmp_path)
    err = refused(individual(short_run, option, str(target)), capsys)
    assert f"{option} {target} {what}" in err and snapshot(tmp_path) == before


def test_extract_refuses_a_symlink_as_its_out_file(short_run, tmp_path, capsys):
    target = tmp_path / "gene.safetensors"
    make_symlink(target)
    before = snapshot(tmp_path)
    err = refused(["extract", "--run-dir", str(short_run), "--out", str(target)], capsys)
    assert "is a symbolic link" in err and snapshot(tmp_path) == before


@pytest.mark.parametrize("stream", ["/dev/stdout", "/dev/stderr", "/proc/self/fd/1"])
def test_a_stream_of_the_process_is_refused_with_a_line_that_says_to_use_a_dash(short_run, capsys, stream):
    err = refused(individual(short_run, "--out-json", stream), capsys)
    assert f"--out-json {stream} is a stream of this process" in err and "`--out-json -`" in err


@pytest.mark.parametrize("existing", [False, True])
def test_two_options_naming_one_file_are_refused_and_nothing_is_written(short_run, tmp_path, capsys, existing):
    target = tmp_path / "result"
    if existing:
        target.write_text("previous\n")
    before = snapshot(tmp_path)
    err = refused(individual(short_run, "--out-json", str(target), "--out-csv", f"{tmp_path}/./result"), capsys)
    assert "--out-json and --out-csv both name" in err and snapshot(tmp_path) == before


def test_a_hard_link_to_the_other_output_is_the_same_file(short_run, tmp_path, capsys):
    (tmp_path / "a.json").write_text("previous\n")
    os.link(tmp_path / "a.json", tmp_path / "b.csv")
    before = snapshot(tmp_path)
    err = refused(
        individual(short_run, "--out-json", str(tmp_path / "a.json"), "--out-csv", str(tmp_path / "b.csv")), capsys
    )
    assert "both name" in err and snapshot(tmp_path) == before


def test_two_outputs_to_standard_output_are_refused(short_run, capsys):
    err = refused(individual(short_run, "--out-json", "-", "--json"), capsys)
    assert "--out-json and --json cannot share standard output" in err


def test_a_dash_prints_the_json_on_standard_output_and_writes_no_file(short_run, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(individual(short_run, "--out-json", "-", "--out-csv", "table.csv")) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["rows"] and result["setup"]["tasks"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["table.csv"]


@pytest.mark.parametrize("make", [make_fifo, make_device, make_symlink], ids=["fifo", "device", "symlink"])
def test_the_atomic_writer_itself_never_renames_over_what_is_not_a_regular_file(tmp_path, make):
    target = tmp_path / "out.json"
    make(target)
    before = snapshot(tmp_path)
    with pytest.raises(LearngeneError, match="which this program does not replace"):
        write_bytes(target, b"{}\n")
    assert snapshot(tmp_path) == before


def _limit_file_size() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (1024, 1024))


def test_a_failed_write_of_out_json_exits_non_zero_and_keeps_the_previous_result(short_run, tmp_path):
    target = tmp_path / "result.json"
    previous = json.dumps({"previous": "good result"}) + "\n"
    target.write_text(previous)
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    argv = [sys.executable, "-m", "core.cli", *individual(short_run, "--threads", "1", "--out-json", str(target))]
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, preexec_fn=_limit_file_size)
    assert done.returncode == 2, done.stderr
    assert "File too large" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert target.read_text() == previous and not leftover_temporaries(tmp_path)
