"""Property-based bad input for the app: every input widget, fed any browser message, keeps a valid value."""

import json
import math
import shutil
import time

import ipywidgets as widgets
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.collective.run_folders import new_run_dir
from core.errors import LearngeneError
from explorer.app import ExplorerApp
from explorer.settings import Settings
from explorer.widgets.fields import MAX_TEXT, Guarded

EXAMPLES = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
OUTPUTS = (widgets.HTML, widgets.HTMLMath, widgets.Label, widgets.IntProgress, widgets.FloatProgress)

wrong_type = st.one_of(
    st.none(),
    st.booleans(),
    st.text(max_size=12),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
numbers = st.one_of(
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, -1, 10**6, 1e308, -1e308, 5e-324]),
)
texts = st.one_of(
    st.text(max_size=50),
    st.sampled_from(["", " ", "12", " 7 ", "1e-3", "nan", "\x00", "../..", "/etc", "x" * (MAX_TEXT + 1)]),
)
browser_values = st.one_of(wrong_type, numbers, texts)


@pytest.fixture(scope="module")
def app(tmp_path_factory, smoke_run):
    root = tmp_path_factory.mktemp("runs")
    shutil.copytree(smoke_run, root / "smoke", ignore=shutil.ignore_patterns(".lock", "export"))
    return ExplorerApp(root, Settings(run="smoke", target_tasks=1, baselines=False))


def descendants(widget):
    yield widget
    for child in getattr(widget, "children", ()):
        yield from descendants(child)


def input_fields(app):
    """Every widget in the page that takes a value from the user."""
    return [w for w in descendants(app.widget) if isinstance(w, widgets.ValueWidget) and not isinstance(w, OUTPUTS)]


def browser_update(widget, state):
    """Deliver `state` exactly as ipywidgets delivers a browser's comm message (it logs, not raises, what fails)."""
    widget._handle_msg({"content": {"data": {"method": "update", "state": state, "buffer_paths": []}}, "buffers": []})


def failures(caplog):
    return [r.getMessage() for r in caplog.records if "Exception in widget method" in r.getMessage()]


def holds_a_valid_value(field) -> bool:
    value = field.value
    if isinstance(field, (widgets.BoundedIntText, widgets.FloatSlider, widgets.FloatLogSlider)):
        low, high = field.limits()
        return (
            not isinstance(value, bool)
            and isinstance(value, (int, float))
            and math.isfinite(value)
            and low <= value <= high
        )
    if isinstance(field, (widgets.Dropdown, widgets.ToggleButtons)):
        return value in field._options_values or (value is None and not field.options)
    if isinstance(field, (widgets.Checkbox, widgets.ToggleButton)):
        return isinstance(value, bool)
    return isinstance(value, str) and len(value) <= MAX_TEXT


def test_every_input_in_the_page_is_a_guarded_field(app):
    fields = input_fields(app)
    # run, run name, dataset, preset, tau, counting, view, threshold, layers, way, shot, tasks, mode, baselines, JSON
    assert len(fields) >= 14
    assert [type(f).__name__ for f in fields if not isinstance(f, Guarded)] == []
    assert all(f.report is not None and f.field_name != "field" for f in fields)  # each refusal names its field


@EXAMPLES
@given(data=st.data(), value=browser_values)
def test_any_browser_value_leaves_a_valid_field_and_a_valid_view_or_says_why(app, data, value, caplog):
    caplog.clear()
    fields = input_fields(app)
    field = data.draw(st.sampled_from(fields), label="field")
    key = "index" if isinstance(field, (widgets.Dropdown, widgets.ToggleButtons)) else "value"
    said = []
    shown = field.report
    field.report = lambda line: (said.append(line), shown(line))
    try:
        browser_update(field, {key: value})
    finally:
        field.report = shown
    assert failures(caplog) == []
    assert holds_a_valid_value(field), (field.description, field.value)
    taken = (getattr(field, key) == value and type(value) is not bool) or (
        isinstance(field.value, bool) and field.value is value
    )
    assert taken or said, f"{field.description}: {value!r} became {getattr(field, key)!r} without a message"
    assert all("\n" not in line and "Traceback" not in line for line in said)
    app.current_settings().validate()


@settings(max_examples=300, deadline=None)
@given(name=texts)
def test_a_new_run_name_is_one_folder_under_the_root_or_a_one_line_refusal(tmp_path_factory, name):
    root = tmp_path_factory.getbasetemp() / "names"
    try:
        path = new_run_dir(root, name)
    except LearngeneError as exc:
        assert "\n" not in str(exc) and len(str(exc)) < 300
    else:
        assert path.parent == root.resolve() and path.name == name.strip()


@pytest.mark.parametrize("name", ["", "   ", "../escape", "a/b", "x" * 300, "bad\x00name", "tab\tname"])
def test_training_under_a_bad_run_name_says_why_and_creates_nothing(app, name, caplog):
    before = sorted(p.name for p in app.root.iterdir())
    browser_update(app.collective.run_name, {"value": name})
    assert app.collective.train() is False
    assert "run name" in app.collective.status.value and "Traceback" not in app.collective.status.value
    assert sorted(p.name for p in app.root.iterdir()) == before
    assert not app.collective.jobs.busy and failures(caplog) == []


json_values = st.recursive(
    st.none() | st.booleans() | numbers | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)
setting_objects = st.dictionaries(st.sampled_from(sorted(json.loads(Settings().to_json()))), json_values, max_size=4)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.one_of(texts, json_values.map(json.dumps), setting_objects.map(json.dumps)))
def test_any_pasted_settings_text_applies_or_says_why(app, text, caplog):
    caplog.clear()
    browser_update(app.share.settings_text, {"value": text})
    app.share.settings_message.value = ""
    applied = app.apply_json(app.share.settings_text.value)
    assert isinstance(applied, bool) and app.share.settings_message.value
    assert "Traceback" not in app.share.settings_message.value and failures(caplog) == []
    app.current_settings().validate()


def test_a_shot_larger_than_the_dataset_allows_ends_the_run_with_cores_message(app):
    app.apply(Settings(run="smoke", target_tasks=1, baselines=False))
    browser_update(app.individual.shot, {"value": 100})
    assert app.individual.start(sweep=False)
    deadline = time.monotonic() + 120
    while app.individual.jobs.busy and time.monotonic() < deadline:
        time.sleep(0.05)
    status = app.individual.status.value
    assert "lower shot" in status and "--" not in status and "Traceback" not in status
    assert not app.individual.run_button.disabled
