"""Property-based bad input: out-of-range, wrong-type, empty and huge values get one line and exit code 2."""

import argparse
import json
import math
import string
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.cli.arguments import path_text
from core.cli.main import build_parser, main
from core.collective.config import CollectiveConfig, preset
from core.errors import LearngeneError

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

not_an_int = st.one_of(
    st.integers(max_value=0).map(str),
    st.integers(min_value=10_001).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(alphabet=string.ascii_letters + string.punctuation + " ", max_size=12).filter(
        lambda t: not t.strip().lstrip("+-").isdigit()
    ),
)
bad_tau = st.one_of(
    st.floats(max_value=1e-15, allow_nan=False),
    st.floats(min_value=10.5, allow_nan=False, allow_infinity=False),
    st.sampled_from(["nan", "inf", "-inf", "", "tau", "1e-3e"]),
)


def one_line_exit_2(argv, capsys) -> str:
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err.strip()
    assert code == 2, (argv, err)
    assert len(err.splitlines()) == 1 and "error" in err and "Traceback" not in err
    return err


@FAST
@given(value=not_an_int, option=st.sampled_from(["--tasks", "--epochs"]))
def test_collective_counts_outside_their_range_or_not_numbers_are_refused(value, option, capsys, tmp_path):
    run_dir = tmp_path / uuid.uuid4().hex
    one_line_exit_2(["collective", "--preset", "smoke", "--run-dir", str(run_dir), option, value], capsys)
    assert not run_dir.exists()


@FAST
@given(value=bad_tau, command=st.sampled_from(["collective", "criterion"]))
def test_tau_outside_the_histogram_range_is_refused(value, command, capsys, tmp_path):
    run_dir = tmp_path / uuid.uuid4().hex
    one_line_exit_2([command, "--run-dir", str(run_dir), "--tau", str(value)], capsys)
    assert not run_dir.exists()


@FAST
@given(
    value=st.one_of(st.integers(max_value=1), st.integers(min_value=10**6), st.text(max_size=6)),
    option=st.sampled_from(["--way", "--shot", "--tasks", "--top-k"]),
)
def test_individual_numbers_out_of_range_are_refused(value, option, capsys, tmp_path):
    one_line_exit_2(["individual", "--run-dir", str(tmp_path / "r"), option, str(value)], capsys)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**12), max_value=10**12)
    | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=200, deadline=None)
@given(changes=st.dictionaries(st.sampled_from(sorted(CollectiveConfig().as_dict())), json_values, max_size=4))
def test_config_json_with_any_values_loads_validly_or_names_the_problem(changes):
    data = json.loads(json.dumps({**preset("smoke").as_dict(), **changes}))
    try:
        config = CollectiveConfig.from_dict(data).validate()
    except LearngeneError as exc:
        assert "\n" not in str(exc) and str(exc)
    else:
        assert config.tasks >= 1 and all(w >= 1 for w in config.widths)


@settings(max_examples=100, deadline=None)
@given(data=json_values)
def test_config_json_that_is_not_an_object_is_refused(data):
    try:
        CollectiveConfig.from_dict(data)
    except LearngeneError as exc:
        assert "\n" not in str(exc)
    else:
        assert isinstance(data, dict)


def commands() -> dict:
    """Each subcommand's name and its parser."""
    return next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices


def value_options():
    """(command, option, kind, bounds or choices) for every option of every command that takes a value."""
    for command, sub in commands().items():
        for action in sub._actions:
            if not action.option_strings or action.nargs == 0 or action.dest == "help":
                continue
            option = action.option_strings[0]
            if action.choices is not None:
                yield command, option, "choice", tuple(action.choices)
            elif hasattr(action.type, "bounds"):
                yield command, option, "number", action.type.bounds
            else:
                yield command, option, "text", None


OPTIONS = sorted(value_options())


def bad_values(kind, detail):
    """Values every option of this kind must refuse: wrong type, empty, huge, out of range."""
    common = st.sampled_from(["", "   "])
    if kind == "number":
        low, high = detail
        return st.one_of(
            common,
            st.text(alphabet=string.ascii_letters + "_-/", min_size=1, max_size=10).filter(
                lambda t: t.strip("-") not in ("inf", "nan", "infinity")
            ),
            st.sampled_from(["nan", "inf", "-inf", "1e400", "0x10", "1,5", str(10**400)]),
            st.floats(max_value=low, exclude_max=True, allow_nan=False, allow_infinity=False).map(repr),
            st.floats(min_value=high, exclude_min=True, allow_nan=False, allow_infinity=False).map(repr),
            st.integers(max_value=math.floor(low) - 1).map(str),
            st.integers(min_value=math.ceil(high) + 1).map(str),
        )
    if kind == "choice":
        return st.one_of(
            common, st.text(min_size=1, max_size=12).filter(lambda t: t not in detail and not t.startswith("-"))
        )
    return st.one_of(common, st.integers(min_value=256, max_value=20_000).map(lambda n: "x" * n))


@pytest.mark.parametrize("command,option,kind,detail", OPTIONS, ids=[f"{c}{o}" for c, o, _, _ in OPTIONS])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_every_option_of_every_command_refuses_bad_values_in_one_line(
    command, option, kind, detail, data, capsys, tmp_path
):
    if kind == "text" and option not in PATH_OPTIONS:
        value = data.draw(st.sampled_from(["", "   "]), label="value")
    else:
        value = data.draw(bad_values(kind, detail), label="value")
    run_dir = tmp_path / uuid.uuid4().hex
    required = (
        {"--run-dir": str(run_dir), "--out": str(run_dir / "lg.safetensors")}
        if command not in ("datasets", "classroom")
        else {}
    )
    if command != "extract":
        required.pop("--out", None)
    required.pop(option, None)
    argv = [command] + [part for item in required.items() for part in item] + [f"{option}={value}"]
    err = one_line_exit_2(argv, capsys)
    assert f"argument {option}" in err, err
    assert not run_dir.exists()


PATH_OPTIONS = {"--run-dir", "--root", "--out", "--learngene", "--out-csv", "--out-json", "--target-root", "--runs"}


def test_path_options_are_the_ones_that_check_path_limits():
    assert {o for _, o, kind, _ in OPTIONS if kind == "text"} >= PATH_OPTIONS
    typed = {
        a.option_strings[0]
        for sub in commands().values()
        for a in sub._actions
        if a.option_strings and a.type is path_text
    }
    assert typed == PATH_OPTIONS
