"""Damaged run directories and learngene files: every command refuses in one line (exit 2) and changes no file."""

import hashlib
import shutil
from pathlib import Path

import pytest

from core.cli.main import main


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under `folder` (the lock file aside) with the sha256 of its bytes."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }


def run_cli(argv: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str]:
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr().err.strip()


COMMANDS = {
    "collective same preset": ["collective", "--preset", "smoke", "--quiet"],
    "collective same preset --resume": ["collective", "--preset", "smoke", "--resume", "--quiet"],
    "collective other preset": ["collective", "--preset", "fast", "--quiet"],
    "criterion": ["criterion"],
    "extract": ["extract", "--layers", "conv2-conv3", "--out", "{tmp}/gene.safetensors"],
    "individual": ["individual", "--tasks", "1", "--epochs", "1", "--quiet"],
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_run_without_its_manifest_keeps_every_checkpoint_after_any_command(smoke_run, tmp_path, capsys, command):
    run_dir = tmp_path / "run"
    shutil.copytree(smoke_run, run_dir)
    (run_dir / "manifest.json").unlink()
    before = snapshot(run_dir)
    argv = [part.replace("{tmp}", str(tmp_path)) for part in COMMANDS[command]]
    code, err = run_cli(argv[:1] + ["--run-dir", str(run_dir)] + argv[1:], capsys)
    assert code == 2 and len(err.splitlines()) == 1 and "manifest.json" in err, err
    assert snapshot(run_dir) == before
