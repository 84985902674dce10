"""Property-based bad input: out-of-range, wrong-type, empty and huge values get one line and exit code 2."""
import json
import string
import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.cli import main
from core.config import CollectiveConfig, preset
from core.errors import LearngeneError

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

not_an_int = st.one_of(
    st.integers(max_value=0).map(str),
    st.integers(min_value=10_001).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(alphabet=string.ascii_letters + string.punctuation + " ", max_size=12).filter(lambda t: not t.strip().lstrip("+-").isdigit()),
)
bad_tau = st.one_of(
    st.floats(max_value=1e-15, allow_nan=False),
    st.floats(min_value=10.5, allow_nan=False, allow_infinity=False),
    st.sampled_from(["nan", "inf", "-inf", "", "tau", "1e-3e"]),
)


def one_line_exit_2(argv, capsys) -> None:
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err.strip()
    assert code == 2, (argv, err)
    assert len(err.splitlines()) == 1 and "error" in err and "Traceback" not in err


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
@given(value=st.one_of(st.integers(max_value=1), st.integers(min_value=10**6), st.text(max_size=6)), option=st.sampled_from(["--way", "--shot", "--tasks", "--top-k"]))
def test_individual_numbers_out_of_range_are_refused(value, option, capsys, tmp_path):
    one_line_exit_2(["individual", "--run-dir", str(tmp_path / "r"), option, str(value)], capsys)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-10**12, max_value=10**12) | st.floats(allow_nan=False) | st.text(max_size=8),
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
