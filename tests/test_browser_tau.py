"""The tau control in a real browser (Voila, headless Chromium): a student's moves through the slider and the box
redraw the map in the chart already shown, a map that cannot tell layers apart says so, no JavaScript error."""

import shutil

import pytest
from test_browser import HEATMAP, Page, browser, server  # noqa: F401 (fixtures shared with the main browser test)

pytestmark = pytest.mark.browser

ANNOTATION = f"{HEATMAP}.layout.annotations[0].text"


@pytest.fixture(scope="module")
def site(tmp_path_factory, smoke_run):
    """The served folder: runs/smoke only."""
    site = tmp_path_factory.mktemp("site")
    shutil.copytree(smoke_run, site / "runs" / "smoke", ignore=shutil.ignore_patterns(".lock", "export"))
    return site


def type_tau(page: Page, text: str) -> None:
    """Type `text` into the tau box and press Enter, as a student does."""
    page.page.fill(".lg-tau-box input", text)
    page.page.press(".lg-tau-box input", "Enter")


def test_tau_moves_through_the_slider_and_the_box_redraw_the_chart_already_shown(server, browser):  # noqa: F811
    page = Page(browser, server)
    page.map_drawn()
    page.js(f"{HEATMAP}.__lgMark = 'first chart'")
    assert page.page.input_value(".lg-tau-box input") == "0.003"
    before = page.js(f"JSON.stringify({HEATMAP}.data[0].z)")
    page.page.focus(".lg-tau .noUi-handle")
    page.page.keyboard.press("ArrowRight")
    page.wait(f"JSON.stringify({HEATMAP}.data[0].z) !== {before!r}", timeout=30_000)
    page.wait(f"{ANNOTATION}.includes('5.62e-03')", timeout=30_000)
    assert page.page.input_value(".lg-tau-box input") == "0.00562" and page.settings()["tau"] == 0.00562
    type_tau(page, "1e-9")
    page.wait(f"{ANNOTATION}.includes('1.00e-09')", timeout=30_000)
    assert page.js(f"{HEATMAP}.__lgMark") == "first chart"  # redrawn in place, not replaced
    assert page.settings()["tau"] == 1e-9 and "tau=1e-09" in page.text(".lg-panel-settings")
    page.page.click("button.lg-copy-link")
    page.wait("document.querySelector('button.lg-copy-link').textContent === 'copied'", timeout=10_000)
    page.close()  # no JavaScript error in the console


def test_a_uniform_map_says_why_and_a_bad_typed_tau_says_what_to_type(server, browser):  # noqa: F811
    page = Page(browser, server)
    page.map_drawn()
    type_tau(page, "9.49")
    page.wait("!!document.querySelector('.lg-uniform-map')", timeout=30_000)
    assert "Move τ lower" in page.text(".lg-uniform-map")
    assert "(most stable window)" not in page.text(".lg-selection")
    type_tau(page, "abc")
    page.wait("document.querySelector('.lg-tau-message').innerText.includes('type a number')", timeout=30_000)
    assert page.page.input_value(".lg-tau-box input") == "9.49"
    type_tau(page, "0.003")
    page.wait("!document.querySelector('.lg-uniform-map')", timeout=30_000)
    assert "(most stable window)" in page.text(".lg-selection") and page.text(".lg-tau-message").strip() == ""
    page.close()
