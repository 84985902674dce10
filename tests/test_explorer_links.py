"""Links and runs folders a hostile visitor or a damaged disk can produce: the page always builds and says why."""

import json
import os
import shutil
import time

import pytest

from core.collective.run_folders import RUNS_ENV
from explorer.app import ExplorerApp, build
from explorer.settings import Settings


@pytest.fixture
def runs(tmp_path, smoke_run):
    root = tmp_path / "runs"
    shutil.copytree(smoke_run, root / "good", ignore=shutil.ignore_patterns(".lock", "export"))
    return root


def damaged_newest(root, name, damage):
    """A copy of the good run, damaged by `damage`, with the newest config.json of the folder."""
    shutil.copytree(root / "good", root / name)
    damage(root / name)
    later = time.time() + 60
    os.utime(root / name / "config.json", (later, later))


DAMAGES = {
    "manifest is a list": lambda d: (d / "manifest.json").write_text("[1, 2]"),
    "manifest finished_tasks is text": lambda d: (d / "manifest.json").write_text(
        json.dumps(json.loads((d / "manifest.json").read_text()) | {"finished_tasks": "3"})
    ),
    "specs missing": lambda d: (d / "manifest.json").write_text(
        json.dumps({k: v for k, v in json.loads((d / "manifest.json").read_text()).items() if k != "specs"})
    ),
    "config is a number": lambda d: (d / "config.json").write_text("7"),
    "config has a bad width": lambda d: (d / "config.json").write_text(
        (d / "config.json").read_text().replace('"tasks": 3', '"tasks": -3')
    ),
    "config nested deeply": lambda d: (d / "config.json").write_text("[" * 50_000 + "]" * 50_000),
    "config not UTF-8": lambda d: (d / "config.json").write_bytes(b"\xff\xfe{"),
    "manifest.json is a folder": lambda d: ((d / "manifest.json").unlink(), (d / "manifest.json").mkdir()),
}


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_a_damaged_newest_run_leaves_the_page_working_for_a_link_to_a_good_run(runs, monkeypatch, damage):
    damaged_newest(runs, "broken", DAMAGES[damage])
    monkeypatch.setenv(RUNS_ENV, str(runs))
    app = build(query="run=good")
    assert app.run is not None and app.run.path.name == "good" and app.message.value == ""
    plain = build(query="")
    assert plain.run is not None and plain.run.path.name == "good"
    app.select_run("broken")
    assert "broken" in app.message.value and "Traceback" not in app.message.value


@pytest.mark.parametrize(
    "name", ["a" * 10_000, "bad\x00name", "x/" * 3000, "\ud800", "é" * 200, "run\nnext", "good/../../etc"]
)
def test_any_run_name_in_a_link_gives_an_inline_message_never_a_traceback(runs, name):
    app = ExplorerApp(runs)
    assert app.open_link(Settings(run="good").to_query()) is True
    assert app.open_link("run=" + name.encode("utf-8", "surrogatepass").decode("latin-1")) is False
    assert app.message.value and len(app.message.value) < 2000
    assert app.select_run(name) is False
