"""The app in a real browser: Voila on 127.0.0.1, headless Chromium, a student's steps, no JavaScript errors.

Each test is a short sequence of clicks and waits, checked in the page itself (the picker, the table, the plotly
data). Screenshots of each panel land in the test's folder, and in $LEARNGENE_SCREENSHOT_DIR when it is set;
$LEARNGENE_SCREENSHOT_TO receives the whole page on a run with unhealthy tasks (docs/explorer.png).
"""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, free_port, stop_server, wait_for_port

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
NOTEBOOK = REPO / "notebooks" / "explorer.ipynb"
HARMLESS = "ERR_NAME_NOT_RESOLVED"  # Voila's FontAwesome stylesheet comes from a CDN; offline it cannot load
ALLOW_EXPORTS = "(.*/)?export/view-[0-9a-f]+/[^/]+[.](html|csv|json)"
PLOT_BY_ANNOTATION = (
    "text => Array.from(document.querySelectorAll('.js-plotly-plot')).find(d => d.layout && "
    "(d.layout.annotations || []).some(a => (a.text || '').includes(text)))"
)
PLOT_BY_TITLE = (
    "text => Array.from(document.querySelectorAll('.js-plotly-plot')).find(d => d.layout && d.layout.title "
    "&& (d.layout.title.text || '').includes(text))"
)
HEATMAP = f"({PLOT_BY_ANNOTATION})('Share of')"
SIZES = f"({PLOT_BY_TITLE})('Few-shot accuracy')"
PANELS = ("collective", "criterion", "individual", "settings")


def start_voila(site: Path, log: Path, port: int, env: dict) -> subprocess.Popen:
    """Voila serving a copy of the app notebook from `site` (so that it serves `site`'s export folders too)."""
    shutil.copyfile(NOTEBOOK, site / "explorer.ipynb")
    voila = Path(sys.executable).parent / "voila"
    command = [
        str(voila),
        str(site / "explorer.ipynb"),
        "--no-browser",
        "--Voila.ip=127.0.0.1",
        f"--port={port}",
        f"--VoilaConfiguration.file_allowlist={ALLOW_EXPORTS}",
    ]
    with open(log, "wb") as out:
        proc = subprocess.Popen(command, cwd=REPO, env=dict(os.environ, **env), stdout=out, stderr=subprocess.STDOUT)
    wait_for_port(port, proc)
    return proc


@pytest.fixture(scope="module")
def dying_run(tmp_path_factory):
    """A smoke run with the paper's shared head and momentum 0.9, whose network stops learning (issue 12)."""
    from core.collective.config import preset
    from core.collective.training import train_collective

    run_dir = tmp_path_factory.mktemp("dying") / "run"
    train_collective(preset("smoke", head="shared", momentum=0.9, lr=0.005), run_dir)
    return run_dir


@pytest.fixture(scope="module")
def site(tmp_path_factory, smoke_run, dying_run):
    """The served folder: runs/smoke, runs/dying, and data/ holding a small image folder of glyphs."""
    from PIL import Image

    from core.data import datasets

    site = tmp_path_factory.mktemp("site")
    for name, run in (("smoke", smoke_run), ("dying", dying_run)):
        shutil.copytree(run, site / "runs" / name, ignore=shutil.ignore_patterns(".lock", "export"))
    glyphs = datasets.load("glyphs", image_size=32, seed=0)
    by_class = glyphs.indices_by_class()
    for c in range(24):
        folder = site / "data" / f"c{c:02d}"
        folder.mkdir(parents=True)
        for i, image in enumerate(glyphs.images[by_class[c][:14]]):
            Image.fromarray(image[0].numpy()).save(folder / f"{i}.png")
    return site


@pytest.fixture(scope="module")
def server(site):
    """One Voila server for this module, on a free port, over the site's runs (the smoke run shown first)."""
    if not CHROMIUM.exists():
        pytest.skip("needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)")
    port = free_port()
    env = dict(LEARNGENE_RUNS=str(site / "runs"), LEARNGENE_RUN="smoke", LEARNGENE_DATA=str(site / "data"))
    proc = start_voila(site, site / "voila.log", port, env)
    yield f"http://127.0.0.1:{port}/"
    stop_server(proc)


@pytest.fixture(scope="module")
def browser():
    playwright_api = pytest.importorskip("playwright.sync_api")
    with playwright_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class Page:
    """A page of the app with its console errors collected."""

    def __init__(self, browser, url: str) -> None:
        self.page = browser.new_page(viewport={"width": 1280, "height": 900})
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.goto(url, timeout=180_000)
        self.page.wait_for_selector(".lg-app", timeout=180_000)

    def js(self, expression: str):
        return self.page.evaluate(expression)

    def wait(self, condition: str, timeout: float = 120_000) -> None:
        self.page.wait_for_function(condition, timeout=timeout, polling=200)

    def text(self, selector: str) -> str:
        return self.page.inner_text(selector)

    def map_drawn(self) -> None:
        self.wait(f"(() => {{ const d = {HEATMAP}; return d && d.data[0].z && d.data[0].z.length > 0; }})()")

    def settings(self) -> dict:
        return json.loads(self.page.input_value(".lg-settings-json textarea"))

    def close(self) -> None:
        assert [e for e in self.errors if HARMLESS not in e] == []
        self.page.close()


def save_panels(page: Page, folder: Path, prefix: str) -> None:
    """One screenshot per panel, and the whole app; copies in $LEARNGENE_SCREENSHOT_DIR when set."""
    height = page.js("document.querySelector('.lg-app').scrollHeight")
    page.page.set_viewport_size({"width": 1280, "height": min(int(height) + 80, 9000)})
    page.js("Array.from(document.querySelectorAll('*')).forEach(e => { if (e.scrollTop) e.scrollTop = 0; })")
    page.page.wait_for_timeout(1000)
    shots = {"app": folder / f"{prefix}-app.png"}
    page.page.screenshot(path=str(shots["app"]), full_page=True)
    for panel in PANELS:
        shots[panel] = folder / f"{prefix}-{panel}.png"
        page.page.locator(f".lg-panel-{panel}").screenshot(path=str(shots[panel]))
    target = os.environ.get("LEARNGENE_SCREENSHOT_DIR")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        for shot in shots.values():
            shutil.copyfile(shot, Path(target) / shot.name)
    assert all(shot.stat().st_size > 10_000 for shot in shots.values())


def click_until(page: Page, button: str, started: str, attempts: int = 3) -> None:
    """Click; on a loaded machine a click sent before the kernel wired the button can be lost: retry."""
    timeout = pytest.importorskip("playwright.sync_api").TimeoutError
    for attempt in range(attempts):
        page.page.click(button)
        try:
            page.wait(started, timeout=30_000)
            return
        except timeout:
            if attempt == attempts - 1:
                raise


def run_individual_models(page: Page, button: str = "button.lg-individual-run") -> None:
    """Press Run (or Size sweep) and wait for the job to end."""
    click_until(page, button, "document.querySelector('button.lg-individual-run').disabled")
    page.wait("!document.querySelector('button.lg-individual-run').disabled", timeout=300_000)
    assert "finished" in page.text(".lg-individual-status")


def traces(page: Page, plot: str, meta: str) -> dict:
    return {
        t["name"]: t
        for t in page.js(f"({plot}).data.map(t => ({{name: t.name, meta: t.meta, x: t.x, y: t.y}}))")
        if t["meta"] == meta
    }


def test_the_page_draws_follows_tau_live_in_its_settings_and_runs_individual_models(server, browser, tmp_path):
    page = Page(browser, server + "?target_tasks=2")
    page.map_drawn()
    before, tau = page.js(f"JSON.stringify({HEATMAP}.data[0].z)"), page.settings()["tau"]
    page.page.focus(".lg-tau .noUi-handle")
    page.page.keyboard.press("ArrowRight")
    page.wait(f"JSON.stringify({HEATMAP}.data[0].z) !== {before!r}", timeout=30_000)
    page.wait(f"JSON.parse(document.querySelector('.lg-settings-json textarea').value).tau !== {tau!r}")
    assert page.settings()["tau"] == 0.00562  # the settings box follows the view live: 0.003's slider step up

    run_individual_models(page)
    points = traces(page, SIZES, "accuracy")
    assert list(points) == ["learngene", "scratch"] and all(len(t["x"]) == 1 for t in points.values())
    assert list(traces(page, SIZES, "chance")) == ["chance (1/5)"]
    assert list(traces(page, SIZES, "difference")) == ["learngene minus scratch"]
    rows = page.js("Array.from(document.querySelectorAll('.lg-results td.model')).map(td => td.innerText)")
    assert rows[0].startswith("learngene: conv") and rows[1].startswith("scratch: the learngene model's shape")
    save_panels(page, tmp_path, "smoke")

    link = page.js("document.querySelector('.lg-panel-settings a').getAttribute('href')")
    second = Page(browser, server + link)  # the link, opened in another tab: the same view and its results
    second.map_drawn()
    second.wait("document.querySelectorAll('.lg-results td.model').length >= 2")
    assert second.settings() == page.settings()
    table = "Array.from(document.querySelectorAll('.lg-results td')).map(td => td.innerText)"
    assert second.js(table) == page.js(table)
    assert second.js(f"JSON.stringify({HEATMAP}.data[0].z)") == page.js(f"JSON.stringify({HEATMAP}.data[0].z)")
    second.close()
    page.close()


def test_a_link_keeps_tau_exactly(server, browser):
    page = Page(browser, server + "?tau=0.001")
    page.map_drawn()
    page.wait("document.querySelector('.lg-tau-box input').value === '0.001'")
    page.page.wait_for_timeout(2000)  # time for the slider to send back a rounded value, if it did
    assert page.settings()["tau"] == 0.001
    assert "tau=0.001" in page.text(".lg-panel-settings")
    page.close()


def test_a_failed_train_keeps_the_loaded_run_and_impossible_choices_are_disabled(server, browser, site):
    page = Page(browser, server)
    page.map_drawn()
    before = page.js(f"JSON.stringify({HEATMAP}.data[0].z)")
    page.page.select_option(".lg-dataset select", label="cifar100 (not here)")
    page.wait("document.querySelector('button.lg-train').disabled")
    assert "cannot train here: cifar100 not found" in page.text(".lg-train-unavailable")
    page.page.select_option(".lg-dataset select", label="glyphs")
    page.page.select_option(".lg-preset select", label="paper (no dataset here fits it)")
    page.wait("document.querySelector('.lg-train-unavailable').innerText.includes('paper preset needs')")
    assert page.js("document.querySelector('button.lg-train').disabled")

    page.page.select_option(".lg-preset select", label="smoke")
    page.page.select_option(".lg-dataset select", label="imagefolder")
    page.wait("!document.querySelector('button.lg-train').disabled")
    runs = sorted(p.name for p in (site / "runs").iterdir())
    (site / "data").rename(site / "data-moved")  # the images go away after the page was opened
    try:
        page.page.click("button.lg-train")
        page.wait("document.querySelector('.lg-train-status').innerText.includes('failed')", timeout=180_000)
    finally:
        (site / "data-moved").rename(site / "data")
    status = page.text(".lg-train-status")
    assert "nothing was written" in status and not re.search(r"(?<![\w-])--[a-z]", status)
    assert sorted(p.name for p in (site / "runs").iterdir()) == runs
    assert page.js("document.querySelector('.lg-run-picker select').value") == "smoke"
    assert page.js(f"JSON.stringify({HEATMAP}.data[0].z)") == before
    page.close()


def test_applying_settings_of_the_same_run_keeps_the_results_and_another_run_clears_them(server, browser):
    page = Page(browser, server + "?target_tasks=1")
    page.map_drawn()
    run_individual_models(page)
    settings = dict(page.settings(), tau=1e-5, view="epoch")
    page.page.fill(".lg-settings-json textarea", json.dumps(settings))
    page.page.click("button:has-text('apply settings')")
    page.wait("document.querySelector('.lg-settings-message').innerText.includes('settings applied')")
    assert page.js("document.querySelectorAll('.lg-results td.model').length") == 2
    assert "cleared" not in page.text(".lg-individual-status")
    page.page.select_option(".lg-run-picker select", "dying")
    page.wait("document.querySelector('.lg-individual-status').innerText.includes('were cleared')")
    assert "No results yet" in page.text(".lg-panel-individual")
    page.close()


def test_the_size_chart_has_one_curve_per_strategy_a_chance_line_and_the_collective_as_reference(server, browser):
    page = Page(browser, server + "?target_tasks=1")
    page.map_drawn()
    run_individual_models(page, "button.lg-individual-sweep")
    curves = traces(page, SIZES, "accuracy")
    for name in ("learngene", "front inheritance", "weight selection", "scratch (weight selection)"):
        assert len(curves[name]["x"]) == 4, name
    sizes = [x for c in curves.values() for x in c["x"]]
    assert max(sizes) / min(sizes) >= 20
    assert list(traces(page, SIZES, "chance")) == ["chance (1/5)"]
    assert list(traces(page, SIZES, "reference")) == ["collective model, fine-tuned"]
    assert len(traces(page, SIZES, "difference")["front inheritance minus scratch"]["x"]) == 4
    page.close()


def test_widths_health_and_unhealthy_marks_are_all_visible(server, browser, tmp_path, dying_run):
    from core.collective.health import health_rows
    from core.collective.runs import open_run

    unhealthy = sum(not row["healthy"] for row in health_rows(open_run(dying_run).metrics()))
    assert unhealthy >= 3  # measured 6 at 1 thread and 11 at 2 (seed 0): the run really stops learning
    page = Page(browser, server + "?run=dying&target_tasks=2")
    page.map_drawn()
    widths = json.loads(
        page.js(f"JSON.stringify(({PLOT_BY_ANNOTATION})('Channels per layer').data.find(t => t.type === 'heatmap'))")
    )
    assert widths["y"] == ["conv1", "conv2", "conv3", "conv4"] and all(None not in row for row in widths["z"])
    greys = page.js(f"{HEATMAP}.layout.shapes.filter(s => s.type === 'rect').length")
    assert 1 <= greys <= unhealthy  # the dying run's unhealthy tasks, greyed (runs of neighbours share a frame)
    health = json.loads(
        page.js(
            f"(() => {{ const d = ({PLOT_BY_ANNOTATION})('Can it still learn'); "
            "return JSON.stringify({x: d.data[0].x, shapes: d.layout.shapes}); })()"
        )
    )
    assert len(health["x"]) == 34 and len(health["shapes"]) >= greys
    assert "must not be read as stable layers" in page.text(".lg-panel-collective")
    run_individual_models(page)
    save_panels(page, tmp_path, "dying")
    target = os.environ.get("LEARNGENE_SCREENSHOT_TO")
    if target:
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(tmp_path / "dying-app.png", target)
    page.close()


def test_export_offers_download_links_that_work(server, browser):
    page = Page(browser, server)
    page.map_drawn()
    page.page.click("button.lg-export")
    page.wait("document.querySelectorAll('.lg-export-files a').length >= 5")
    links = page.js("Array.from(document.querySelectorAll('.lg-export-files a')).map(a => a.getAttribute('href'))")
    csv = next(link for link in links if link.endswith("criterion.csv"))
    response = page.page.request.get(server.rstrip("/") + csv)
    assert response.status == 200 and response.text().startswith("task,layer,tau")
    assert page.page.request.get(server + "voila/files/runs/smoke/config.json").status == 403  # exports only
    page.close()


def test_training_from_the_page_never_switches_the_selection_and_the_new_run_starts_from_its_default(server, browser):
    page = Page(browser, server + "?preset=smoke")
    page.map_drawn()
    label = page.text(".lg-selection")
    page.page.wait_for_timeout(3000)
    assert page.text(".lg-selection") == label and "(most stable window)" in label  # moving nothing
    page.js(
        "window.__labels = []; new MutationObserver(() => window.__labels.push("
        "document.querySelector('.lg-selection').innerText)).observe(document.querySelector('.lg-selection'), "
        "{subtree: true, childList: true, characterData: true})"
    )
    page.page.fill(".lg-run-name input", "smoke-new")
    page.page.press(".lg-run-name input", "Tab")
    loss = f"(({PLOT_BY_ANNOTATION})('Training loss') || {{data: []}}).data[0].x.length"
    page.page.click("button.lg-train")
    page.wait(
        "/task \\d+\\/34, epoch \\d+\\/15/.test(document.querySelector('.lg-train-progress').innerText)",
        timeout=180_000,
    )
    page.wait(f"{loss} > 15", timeout=180_000)  # the charts fill while it trains
    page.wait("document.querySelector('.lg-train-status').innerText.includes('finished')", timeout=900_000)
    assert page.js(loss) == 34 * 15
    assert page.js("document.querySelector('.lg-run-picker select').value") == "smoke-new"
    labels = [text for text in page.js("window.__labels") if text]  # empty while the live map has no epoch yet
    # early epochs of a live run may leave every conv score about 0 or at the ceiling: the rule says so, still top-k
    top_k = ("(most stable window)", "(scores tied at this τ, so not a most stable window)")
    assert labels and all(text.strip().endswith(top_k) for text in labels), set(labels)
    assert labels[-1].strip().endswith("(most stable window)"), labels[-1]
    run_individual_models(page)  # the new run's own default selection is usable at once
    page.close()


def test_a_link_that_escapes_the_runs_root_shows_a_message_in_the_page(server, browser):
    page = Page(browser, server + "?run=..%2F..%2Fetc")
    page.page.wait_for_selector(".lg-app-message >> text=link ignored", timeout=120_000)
    text = page.text(".lg-app-message")
    assert "runs root" in text and "Traceback" not in page.text("body")
    page.close()


@pytest.fixture(scope="module")
def empty_server(tmp_path_factory):
    """Voila over an empty runs root: the first screen."""
    if not CHROMIUM.exists():
        pytest.skip("needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)")
    site = tmp_path_factory.mktemp("empty-site")
    port = free_port()
    proc = start_voila(site, site / "voila.log", port, dict(LEARNGENE_RUNS=str(site / "runs")))
    yield f"http://127.0.0.1:{port}/", site / "runs"
    stop_server(proc)


def test_the_first_screen_has_one_call_to_action_and_placeholders_and_a_cancelled_start_leaves_nothing(
    empty_server, browser
):
    url, runs = empty_server
    page = Page(browser, url)
    page.page.wait_for_selector("button.lg-welcome-train", state="visible", timeout=120_000)
    visible = "s => Array.from(document.querySelectorAll(s)).filter(e => e.offsetParent !== null).length"
    assert page.js(f"({visible})('button.lg-welcome-train')") == 1
    for hidden in ("button.lg-train", "button.lg-individual-run", ".lg-tau", ".js-plotly-plot"):
        assert page.js(f"({visible})({hidden!r})") == 0, hidden
    assert page.js(f"({visible})('.lg-placeholder')") >= 2
    assert re.search(r"about \d+ min when the machine is idle", page.text(".lg-welcome"))
    click_until(page, "button.lg-welcome-train", "!document.querySelector('button.lg-train-cancel').disabled")
    assert page.js(f"({visible})('button.lg-train-cancel')") == 1  # panel 1 shows the job and its Cancel
    page.page.click("button.lg-train-cancel")  # before the first of 40 tasks ends
    page.wait("document.querySelector('.lg-train-status').innerText.includes('cancelled')", timeout=120_000)
    assert "nothing was written" in page.text(".lg-train-status")
    assert not runs.exists() or list(runs.iterdir()) == []
    page.wait(f"({visible})('button.lg-welcome-train') === 1")  # back to the first screen
    page.close()


@pytest.fixture(scope="module")
def lab(tmp_path_factory, smoke_run):
    """JupyterLab on a free port (no token, its state in a temporary folder) with a notebook that shows the app."""
    if not CHROMIUM.exists():
        pytest.skip("needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)")
    import nbformat

    home = tmp_path_factory.mktemp("lab")
    run = home / "runs" / "smoke"
    shutil.copytree(smoke_run, run, ignore=shutil.ignore_patterns(".lock", "export"))
    cell = nbformat.v4.new_code_cell(f"import explorer\nexplorer.show({str(run)!r})")
    notebook = nbformat.v4.new_notebook(
        cells=[cell], metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
    )
    nbformat.write(notebook, home / "app.ipynb")
    port = free_port()
    env = dict(
        os.environ,
        JUPYTER_CONFIG_DIR=str(home / "config"),
        JUPYTER_RUNTIME_DIR=str(home / "runtime"),
        JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"),
    )
    jupyter = Path(sys.executable).parent / "jupyter"
    command = [
        str(jupyter),
        "lab",
        "--no-browser",
        "--allow-root",
        f"--port={port}",
        "--ServerApp.ip=127.0.0.1",
        "--IdentityProvider.token=",
        f"--ServerApp.root_dir={home}",
    ]
    with open(home / "lab.log", "wb") as out:
        proc = subprocess.Popen(command, cwd=home, env=env, stdout=out, stderr=subprocess.STDOUT)
    wait_for_port(port, proc)
    yield f"http://127.0.0.1:{port}/lab/tree/app.ipynb"
    stop_server(proc)


def test_in_jupyterlab_the_app_draws_its_charts_and_follows_tau(lab, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(lab, timeout=120_000)
    page.wait_for_selector(".jp-Notebook .jp-Cell .cm-content", timeout=120_000)
    idle = "Array.from(document.querySelectorAll('.jp-StatusBar-TextItem')).some(e => e.innerText.includes('Idle'))"
    page.wait_for_function(idle, timeout=120_000)  # a cell run before the kernel is up would be dropped
    page.click(".jp-Notebook .jp-Cell .cm-content")
    page.keyboard.press("Shift+Enter")
    page.wait_for_function(
        f"(() => {{ const d = {HEATMAP}; return d && d.data[0].z && d.data[0].z.length > 0; }})()",
        timeout=180_000,
    )
    assert page.evaluate("document.querySelectorAll('.js-plotly-plot').length") >= 3
    before = page.evaluate(f"JSON.stringify({HEATMAP}.data[0].z)")
    page.focus(".lg-tau .noUi-handle")
    page.keyboard.press("ArrowRight")
    page.wait_for_function(f"JSON.stringify({HEATMAP}.data[0].z) !== {before!r}", timeout=30_000)
    assert errors == []
    page.close()
