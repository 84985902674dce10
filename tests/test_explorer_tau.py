"""The criterion map's tau control without a browser: slider and box in step, typed values checked, tau short in the
link and JSON, a sentence when the map cannot tell layers apart, and tau moves redrawn in the chart already shown."""

import json
import math

import pytest
from plotly.utils import PlotlyJSONEncoder

from explorer.app import ExplorerApp
from explorer.criterion.figure import HEAT
from explorer.criterion.tau_control import TauControl
from explorer.settings import Settings
from explorer.widgets.live_figure import MIMETYPE, REDRAW_ENV


@pytest.fixture
def app(runs):
    return ExplorerApp(runs, Settings(run="smoke"))


def slider_exponent(control: TauControl) -> float:
    return math.log10(control.slider.value)


def settings_box(app: ExplorerApp) -> dict:
    return json.loads(app.share.settings_text.value)


def test_the_slider_moves_in_quarter_decades_over_the_useful_range_and_the_box_follows_it():
    control = TauControl(1e-4)
    assert (control.slider.min, control.slider.max, control.slider.step) == (-6, -1, 0.25)
    control.slider.set_state({"value": 10**-2.25})  # as the browser sends a slider move
    assert control.value == 0.00562 and control.box.value == "0.00562"
    control.slider.set_state({"value": 10**-2.5})
    assert control.value == 0.00316 and control.box.value == "0.00316"


def test_a_typed_value_moves_the_slider_to_its_quarter_decade_or_to_the_end_of_its_range():
    control = TauControl(1e-4)
    control.box.set_state({"value": "2e-3"})  # as the browser sends a typed value (Enter)
    assert control.value == 0.002 and slider_exponent(control) == pytest.approx(-2.75)
    control.box.set_state({"value": " 1e-9 "})
    assert control.value == 1e-9 and slider_exponent(control) == pytest.approx(-6)
    control.box.set_state({"value": "9.49"})
    assert control.value == 9.49 and slider_exponent(control) == pytest.approx(-1)
    control.box.set_state({"value": "0.0031234"})
    assert control.value == 0.00312 and control.box.value == "0.00312"  # three significant digits, shown as kept
    assert "0.0031234 is kept as 0.00312" in control.message.value
    control.box.set_state({"value": "1e-14"})
    assert control.value == 1e-14 and slider_exponent(control) == pytest.approx(-6) and control.message.value == ""


@pytest.mark.parametrize("text", ["abc", "", "0", "-1e-4", "100", "1e-20", "nan", "inf", "1e-4x"])
def test_a_bad_typed_value_keeps_tau_and_says_on_the_page_what_to_type(text):
    control = TauControl(3e-3)
    control.box.set_state({"value": text})
    assert control.value == 0.003 and control.box.value == "0.003"
    assert "type a number from 1e-14 to 10" in control.message.value and "stays 0.003" in control.message.value
    control.slider.set_state({"value": 10**-3})
    assert control.value == 0.001 and control.message.value == ""  # the next good move clears it


def test_tau_has_three_significant_digits_in_the_link_and_the_json(app):
    app.heatmap.tau.slider.set_state({"value": 10**-2.75})  # 0.0017782794100389228 in the browser
    assert app.heatmap.tau.value == 0.00178
    assert "tau=0.00178&" in app.share.link.value + "&" and settings_box(app)["tau"] == 0.00178
    long = Settings(run="smoke", tau=0.003000000000000001)
    assert "tau=0.003" in long.to_query() and "tau=0.003000" not in long.to_query()
    assert json.loads(long.to_json())["tau"] == 0.003


def test_an_old_link_with_a_long_tau_still_opens_at_the_short_value(app):
    assert app.open_link("run=smoke&tau=0.003000000000000001")
    assert app.heatmap.tau.value == 0.003 and app.heatmap.tau.box.value == "0.003"
    assert "tau=0.003" in app.share.link.value and "0.003000" not in app.share.link.value
    assert settings_box(app)["tau"] == 0.003 and app.message.value == ""


def test_the_link_has_a_copy_button_that_copies_the_pages_address_with_this_view(app):
    app.heatmap.tau.value = 1e-3
    link = app.share.link.value
    assert "<button class='lg-copy-link' type='button'" in link and "navigator.clipboard.writeText" in link
    assert "location.origin + location.pathname" in link and "&quot;run=smoke&amp;tau=0.001&quot;" in link


def test_a_map_above_every_gradient_says_why_it_is_uniform_and_to_move_tau_lower(app):
    app.heatmap.tau.value = 9.49
    note = app.heatmap.flat_note.value
    assert "cannot tell the layers apart" in note and "every score is about 0" in note and "Move τ lower" in note
    assert "(most stable window)" not in app.heatmap.selection_label.value
    assert "scores tied at this τ" in app.heatmap.selection_label.value


def test_a_map_below_every_gradient_says_the_scores_are_tied_and_to_move_tau_higher(app):
    app.heatmap.tau.value = 1e-14
    note = app.heatmap.flat_note.value
    assert "cannot tell the layers apart" in note and "Move τ higher" in note and "scores all lie between" in note
    assert "(most stable window)" not in app.heatmap.selection_label.value


def test_a_map_that_tells_layers_apart_has_no_sentence_and_names_the_most_stable_window(app):
    app.heatmap.tau.value = 3e-3
    assert app.heatmap.flat_note.value == ""
    assert "(most stable window)" in app.heatmap.selection_label.value


def test_a_tau_move_redraws_the_shown_charts_in_place_the_map_at_once_and_the_bars_after_its_frame(app):
    figure, scores = app.heatmap.figure, app.heatmap.scores_figure
    charts = figure.widget.outputs, scores.widget.outputs
    app.heatmap.tau.slider.set_state({"value": 10**-2.25})
    assert (figure.widget.outputs, scores.widget.outputs) == charts  # the page keeps its charts
    script = figure.channel.outputs[0]["data"]["application/javascript"]  # one message for both charts
    map_at, frame_at, bars_at = (
        script.index(f".{figure.css_class} .js-plotly-plot"),
        script.index("requestAnimationFrame"),
        script.index(f".{scores.css_class} .js-plotly-plot"),
    )
    assert script.count("Plotly.react") == 2 and map_at < frame_at < bars_at
    assert figure.shown()["data"][HEAT]["z"] == [list(row) for row in figure.data[HEAT].z]
    assert "5.62e-03" in figure.shown()["layout"]["annotations"][0]["text"]
    assert (
        json.dumps(scores.shown()["data"][0]["x"], separators=(",", ":")) in script[frame_at:]
    )  # the bars are the move's


def test_what_a_tau_move_sends_in_place_is_what_a_whole_redraw_sends_and_what_the_figure_exports(runs, monkeypatch):
    in_place, whole = ExplorerApp(runs, Settings(run="smoke")), ExplorerApp(runs, Settings(run="smoke"))

    def moves(app):
        return [
            lambda: app.heatmap.tau.slider.set_state({"value": 10**-2.25}),
            lambda: app.heatmap.use_threshold(0.05),  # the threshold line appears
            lambda: app.heatmap.tau.slider.set_state({"value": 10**-5}),
            lambda: setattr(app.heatmap.absolute, "value", True),
            lambda: app.heatmap.tau.box.set_state({"value": "1e-14"}),
            lambda: app.heatmap.use_default(),  # the threshold line goes
            lambda: app.heatmap.tau.slider.set_state({"value": 10**-3}),
        ]

    for move, twin in zip(moves(in_place), moves(whole)):
        monkeypatch.delenv(REDRAW_ENV, raising=False)
        move()
        monkeypatch.setenv(REDRAW_ENV, "whole")
        twin()  # plotly's own update of the figure, sent whole
        for chart in ("figure", "scores_figure"):
            sent = getattr(in_place.heatmap, chart).shown()
            assert sent["data"] == getattr(whole.heatmap, chart).shown()["data"]
            assert sent["layout"] == getattr(whole.heatmap, chart).shown()["layout"]
    assert "Plotly.react" in in_place.heatmap.figure.channel.outputs[0]["data"]["application/javascript"]
    for chart in ("figure", "scores_figure"):
        figure = getattr(in_place.heatmap, chart)
        exported = json.loads(json.dumps(figure.snapshot().to_dict(), cls=PlotlyJSONEncoder))
        assert exported["data"] == figure.shown()["data"]


def test_a_whole_chart_after_in_place_moves_reaches_the_page_even_when_it_equals_the_one_it_holds(app):
    chart = app.heatmap.figure.widget.outputs
    app.heatmap.tau.slider.set_state({"value": 10**-2.25})
    app.heatmap.set_tau(0.003)  # back to the view that the Output holds, as applying settings does
    assert app.heatmap.figure.widget.outputs != chart
    assert app.heatmap.figure.widget.outputs[0]["data"][MIMETYPE] == app.heatmap.figure.shown()


def test_the_old_way_sends_a_new_chart_per_tau_move(app, monkeypatch):
    monkeypatch.setenv(REDRAW_ENV, "whole")
    chart, script = app.heatmap.figure.widget.outputs, app.heatmap.figure.channel.outputs
    app.heatmap.tau.slider.set_state({"value": 10**-2.25})
    assert app.heatmap.figure.widget.outputs is not chart and app.heatmap.figure.channel.outputs is script
    assert "5.62e-03" in app.heatmap.figure.widget.outputs[0]["data"][MIMETYPE]["layout"]["annotations"][0]["text"]
