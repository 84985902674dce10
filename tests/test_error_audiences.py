"""Errors that know their audience (issue 22): core's errors carry the settings and actions that fix them as data;
the command line words them as options and commands, the page as fields and buttons, and core writes neither."""

from __future__ import annotations

import argparse
import ast
import importlib
import pickle
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import REPO

from core.cli.main import build_parser, main
from core.cli.messages import COMMANDS, line, option
from core.collective.config import CollectiveConfig
from core.collective.criterion import EpochRecorder
from core.collective.runs import open_run
from core.errors import ACTIONS, SETTINGS, Action, LearngeneError, Setting
from core.individual.config import IndividualConfig
from core.learngene.selection import parse_layers
from explorer.widgets.wording import BUTTONS, FIELDS, WITHOUT_DATA, page_line

FLAG = re.compile(r"(?<![\w-])--[a-z][\w-]*")  # a command-line option such as --run-dir
COMMAND = "`learngene "
PLACES = re.compile(r"\((panel \d|the run menu|set by|LEARNGENE_DATA when)")  # where a page field is


@dataclass(frozen=True)
class Site:
    """One place in core that builds an error message: file, line, and the message's parts (values as X)."""

    where: str
    parts: tuple


def _text(node: ast.expr) -> str:
    if isinstance(node, ast.Constant):
        return str(node.value)
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "X" for v in node.values)
    return "X"


def _parts(nodes: list[ast.expr], module: str) -> tuple:
    parts: list = []
    for node in nodes:
        kind = node.func.id if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) else ""
        if kind in ("Setting", "Option", "Action"):
            parts.append((Action if kind == "Action" else Setting)(*(_text(a) for a in node.args)))
        elif isinstance(node, ast.Starred) and isinstance(node.value, ast.Name):
            named = getattr(importlib.import_module(module), node.value.id, None)
            parts.extend(named if isinstance(named, tuple) else ("X",))  # a module's message, e.g. HOW_TO_GET
        else:
            parts.append(_text(node))
    return tuple(parts)


def core_error_sites() -> list[Site]:
    """Every LearngeneError(...) and every (ok, *message) check that core builds outside its command line."""
    sites = []
    for path in sorted((REPO / "core").rglob("*.py")):
        if "cli" in path.parts or path.name == "errors.py":
            continue
        module = ".".join(path.relative_to(REPO).with_suffix("").parts)
        for node in ast.walk(ast.parse(path.read_text())):
            where = f"{path.relative_to(REPO)}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "LearngeneError":
                sites.append(Site(where, _parts(node.args, module)))
            elif (
                isinstance(node, ast.Tuple)
                and len(node.elts) >= 2
                and isinstance(node.elts[0], (ast.Compare, ast.BoolOp))
            ):
                sites.append(Site(where, _parts(node.elts[1:], module)))
    return sites


def core_literals() -> list[tuple[str, str]]:
    """(file, text) of every string core writes outside its command line and docstrings (f-string fields as X)."""
    found = []
    for path in sorted((REPO / "core").rglob("*.py")):
        if "cli" in path.parts:
            continue
        tree = ast.parse(path.read_text())
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and node.body
            and isinstance(node.body[0], ast.Expr)
        }
        inner = {id(v) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr) for v in node.values}
        for node in ast.walk(tree):
            if id(node) in docstrings or id(node) in inner:
                continue
            if isinstance(node, ast.JoinedStr) or (isinstance(node, ast.Constant) and isinstance(node.value, str)):
                found.append((str(path.relative_to(REPO)), _text(node)))
    return found


def options_of(parser) -> set[str]:
    """Every option string of the parser and its subcommands."""
    found = {s for action in parser._actions for s in action.option_strings}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found |= options_of(sub)
    return found


def test_no_core_message_outside_the_command_line_writes_an_option_or_a_command():
    literals = core_literals()
    assert len(literals) > 500
    offending = [(where, text) for where, text in literals if FLAG.search(text) or COMMAND in text]
    assert offending == []


def test_every_core_error_reads_as_options_on_the_command_line_and_as_fields_on_the_page(monkeypatch):
    monkeypatch.setenv("LEARNGENE_DATA", "/data")
    sites = core_error_sites()
    fixed = [s for s in sites if any(isinstance(p, (Setting, Action)) for p in s.parts)]
    assert len(sites) >= 200 and len(fixed) >= 45, (len(sites), len(fixed))
    for site in sites:
        error = LearngeneError(*site.parts)
        cli, page = line(error), page_line(error)
        assert "\n" not in cli and "\n" not in page, site
        assert not FLAG.search(page) and COMMAND not in page, (site, page)
        assert not PLACES.search(cli), (site, cli)
        for part in error.fixes:
            if isinstance(part, Setting):
                assert option(part) in cli and FIELDS[part.id][0] in page and option(part) not in page, (site, page)
            else:
                assert COMMANDS[part.id].format(arg=part.arg) in cli, (site, cli)


def test_every_setting_is_an_option_of_the_command_line_and_a_field_of_the_page():
    options = options_of(build_parser())
    assert set(SETTINGS) == set(FIELDS)
    assert [i for i in SETTINGS if option(Setting(i)) not in options] == []
    assert set(ACTIONS) == set(COMMANDS) == set(BUTTONS) == set(WITHOUT_DATA)
    ours = [re.sub(r"`pip [^`]*`", "", text) for text in COMMANDS.values()]  # pip's own options aside
    named = {flag for text in ours for flag in FLAG.findall(text)}
    assert named and named <= options
    assert [text for text in (*BUTTONS.values(), *WITHOUT_DATA.values()) if FLAG.search(text) or "`" in text] == []
    with pytest.raises(ValueError, match="unknown setting id"):
        Setting("shots")


def test_real_errors_keep_their_parts_across_processes_and_render_for_both_audiences(tmp_path, monkeypatch):
    monkeypatch.delenv("LEARNGENE_DATA", raising=False)
    raised = []
    for trigger in (
        lambda: CollectiveConfig(tasks=0).validate(),
        lambda: IndividualConfig(epochs=0).validate(),
        lambda: EpochRecorder({}, tau=-1.0),
        lambda: open_run(tmp_path / "nowhere"),
        lambda: parse_layers(" , ", ("conv1", "conv2")),
    ):
        with pytest.raises(LearngeneError) as caught:
            trigger()
        raised.append(pickle.loads(pickle.dumps(caught.value)))  # a Dask worker's error arrives pickled
    assert [line(e) for e in raised] == [
        "--tasks must be between 1 and 1000",
        "--epochs must be between 1 and 10000",
        "tau must be a finite number >= 0, got -1.0: pass e.g. --tau 5e-10",
        f"no run directory at {tmp_path / 'nowhere'}: create one with "
        f"`learngene collective --run-dir {tmp_path / 'nowhere'}`",
        "--layers ' , ' names no layer: write e.g. conv4-conv6 or conv4,conv5,conv6",
    ]
    assert [page_line(e) for e in raised] == [
        "the preset's number of tasks (panel 1) must be between 1 and 1000",
        "epochs per target task (set by the individual preset) must be between 1 and 10000",
        "tau must be a finite number >= 0, got -1.0: pass e.g. τ 5e-10 (panel 2)",
        f"no run directory at {tmp_path / 'nowhere'}: create one with Train / resume in panel 1",
        "layers ' , ' (panel 2) names no layer: write e.g. conv4-conv6 or conv4,conv5,conv6",
    ]
    assert [e.fixes for e in raised][:3] == [
        (Setting("tasks"),),
        (Setting("target_epochs"),),
        (Setting("tau", "5e-10"),),
    ]


def test_the_command_line_prints_the_option_in_one_line_and_exits_2(tmp_path, capsys):
    assert main(["criterion", "--run-dir", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"learngene criterion: error: no run directory at {tmp_path / 'nowhere'}: create one with "
        f"`learngene collective --run-dir {tmp_path / 'nowhere'}`\n"
    )


def test_the_page_words_data_actions_by_its_own_data_folder(monkeypatch):
    error = LearngeneError("x: put it into ", Action("data_folder", "omniglot"), ", then ", Action("data_root"))
    monkeypatch.setenv("LEARNGENE_DATA", str(Path("/srv/data")))
    assert page_line(error) == "x: put it into /srv/data/omniglot, then reload the page (its data folder: /srv/data)"
    monkeypatch.delenv("LEARNGENE_DATA")
    assert page_line(error) == "x: put it into a folder DIR's omniglot subfolder, then start the page with " + (
        "LEARNGENE_DATA set to DIR"
    )
    assert line(error) == "x: put it into DIR/omniglot, then pass --root DIR or set LEARNGENE_DATA=DIR"
