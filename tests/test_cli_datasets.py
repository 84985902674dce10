"""`learngene datasets` reports every dataset, what it holds and whether it is available here."""

import json
import os
import subprocess
import sys

import pytest
from conftest import shared_data

from core.cli.main import main


def test_datasets_json_lists_glyphs_as_available_with_at_least_300_classes(capsys, monkeypatch):
    monkeypatch.delenv("LEARNGENE_DATA", raising=False)
    assert main(["datasets", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert set(rows) == {"glyphs", "omniglot", "cifar100", "imagefolder"}
    assert rows["glyphs"]["available"] and rows["glyphs"]["classes"] >= 300
    assert not rows["omniglot"]["available"] and "LEARNGENE_DATA" in rows["omniglot"]["reason"]
    assert all(row["how_to_get"] for row in rows.values())


def test_omniglot_is_available_when_learngene_data_points_at_shared_data(capsys, monkeypatch):
    data = shared_data()
    if data is None or not (data / "omniglot").is_dir():
        pytest.skip("no ../shared/data/omniglot here: set LEARNGENE_DATA to a folder holding omniglot/")
    monkeypatch.setenv("LEARNGENE_DATA", str(data))
    assert main(["datasets", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["omniglot"]["available"] and rows["omniglot"]["classes"] == 242 and rows["omniglot"]["images"] == 4840


def test_console_script_runs_and_bad_dataset_exits_2_with_one_line(tmp_path):
    exe = os.path.join(os.path.dirname(sys.executable), "learngene")
    if not os.path.exists(exe):
        pytest.skip("the learngene console script is not installed in this environment (pip install -e .)")
    ok = subprocess.run([exe, "datasets"], capture_output=True, text=True)
    assert ok.returncode == 0 and "glyphs" in ok.stdout
    bad = subprocess.run(
        [exe, "collective", "--dataset", "mnist", "--run-dir", str(tmp_path / "r")], capture_output=True, text=True
    )
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and "mnist" in bad.stderr


def test_missing_data_root_is_one_line_with_exit_code_2(tmp_path, capsys):
    code = main(
        [
            "collective",
            "--dataset",
            "omniglot",
            "--root",
            str(tmp_path / "nowhere"),
            "--preset",
            "smoke",
            "--run-dir",
            str(tmp_path / "r"),
        ]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "omniglot" in err


def test_download_flag_reaches_the_cifar100_fetcher_and_is_off_by_default(tmp_path, capsys, monkeypatch):
    import core.data.cifar100

    calls = []

    def offline_fetch(url, dest):
        calls.append(url)
        raise OSError("network is unreachable")

    monkeypatch.setattr(core.data.cifar100, "fetch", offline_fetch)
    argv = [
        "collective",
        "--dataset",
        "cifar100",
        "--root",
        str(tmp_path),
        "--preset",
        "smoke",
        "--run-dir",
        str(tmp_path / "r"),
    ]
    assert main(argv) == 2 and calls == []
    assert "--download" in capsys.readouterr().err
    assert main(argv[:1] + ["--download"] + argv[1:]) == 2 and len(calls) == 1
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
