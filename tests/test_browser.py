"""The app in a real browser: Voila on 127.0.0.1, headless Chromium, tau slider, Run button, no JavaScript errors."""

import os
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
PLOT_BY_TYPE = (
    "kind => Array.from(document.querySelectorAll('.js-plotly-plot')).find(d => d.data && d.data.length && "
    "d.data[0].type === kind)"
)
PLOT_BY_ANNOTATION = (
    "text => Array.from(document.querySelectorAll('.js-plotly-plot')).find(d => d.layout && "
    "(d.layout.annotations || []).some(a => (a.text || '').includes(text)))"
)
PLOT_BY_TITLE = (
    "text => Array.from(document.querySelectorAll('.js-plotly-plot')).find(d => d.layout && d.layout.title "
    "&& (d.layout.title.text || '').includes(text))"
)


def start_voila(root: Path, log: Path, port: int) -> subprocess.Popen:
    """Voila serving the app notebook, with the runs root and run given through the environment."""
    env = dict(os.environ, LEARNGENE_RUNS=str(root), LEARNGENE_RUN="smoke")
    voila = Path(sys.executable).parent / "voila"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(voila), str(NOTEBOOK), "--no-browser", "--Voila.ip=127.0.0.1", f"--port={port}"],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    wait_for_port(port, proc)
    return proc


@pytest.fixture(scope="module")
def server(tmp_path_factory, smoke_run):
    """One Voila server for this module, on a free port, over a private copy of the smoke run."""
    if not CHROMIUM.exists():
        pytest.skip("needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)")
    root = tmp_path_factory.mktemp("browser") / "runs"
    shutil.copytree(smoke_run, root / "smoke", ignore=shutil.ignore_patterns(".lock", "export"))
    port = free_port()
    proc = start_voila(root, root.parent / "voila.log", port)
    yield f"http://127.0.0.1:{port}/"
    stop_server(proc)


@pytest.fixture(scope="module")
def browser():
    playwright_api = pytest.importorskip("playwright.sync_api")
    with playwright_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def heatmap_z(page) -> str:
    return page.evaluate(f"JSON.stringify(({PLOT_BY_TYPE})('heatmap').data[0].z)")


def save_screenshot(page, path: Path) -> None:
    """The whole app: Voila scrolls inside a container, so grow the viewport to the content first."""
    height = page.evaluate("document.querySelector('.lg-app').scrollHeight")
    page.set_viewport_size({"width": 1280, "height": min(int(height) + 80, 8000)})
    page.evaluate("Array.from(document.querySelectorAll('*')).forEach(e => { if (e.scrollTop) e.scrollTop = 0; })")
    page.wait_for_timeout(800)
    page.screenshot(path=str(path), full_page=True)


def click_run_until_a_job_starts(page, has_points: str, attempts: int = 3) -> None:
    """Click Run; on a loaded machine a click sent before the kernel wired the button can be lost: retry."""
    started = f"document.querySelector('button.lg-individual-run').disabled || {has_points}"
    for attempt in range(attempts):
        page.click("button.lg-individual-run")
        try:
            page.wait_for_function(started, timeout=30_000)
            return
        except pytest.importorskip("playwright.sync_api").TimeoutError:
            if attempt == attempts - 1:
                raise


def test_app_draws_the_heatmap_follows_tau_and_runs_individual_models(server, browser, tmp_path):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server + "?target_tasks=1&baselines=0", timeout=120_000)
    page.wait_for_function(
        f"(() => {{ const d = ({PLOT_BY_TYPE})('heatmap'); return d && d.data[0].z && d.data[0].z.length > 0; }})()",
        timeout=120_000,
    )
    before = heatmap_z(page)

    page.focus(".lg-tau .noUi-handle")
    page.keyboard.press("ArrowRight")
    page.wait_for_function(f"JSON.stringify(({PLOT_BY_TYPE})('heatmap').data[0].z) !== {before!r}", timeout=30_000)

    has_points = (
        f"(() => {{ const d = ({PLOT_BY_TITLE})('Few-shot accuracy'); "
        "return d && d.data.length >= 2 && d.data.every(t => t.x && t.x.length > 0); })()"
    )
    click_run_until_a_job_starts(page, has_points)
    page.wait_for_function(has_points, timeout=180_000)
    names = page.evaluate(f"({PLOT_BY_TITLE})('Few-shot accuracy').data.map(t => t.name)")
    assert names == ["learngene", "scratch"]
    page.wait_for_function("!document.querySelector('button.lg-individual-run').disabled", timeout=60_000)

    save_screenshot(page, tmp_path / "explorer.png")
    target = os.environ.get("LEARNGENE_SCREENSHOT_TO")
    if target:
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(tmp_path / "explorer.png", target)
    assert [e for e in errors if HARMLESS not in e] == []
    page.close()


def test_training_from_the_page_fills_the_collective_charts_while_it_runs(server, browser):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(server + "?preset=smoke", timeout=120_000)
    loss = (
        f"(({PLOT_BY_ANNOTATION})('Training loss') || {{data: []}}).data.filter(t => t.x && t.x.length).map(t => "
        "t.x.length)"
    )
    page.wait_for_function(f"{loss}.length > 0", timeout=120_000)
    assert page.input_value(".lg-run-name input") == "smoke-glyphs"
    page.click("button.lg-train")
    page.wait_for_function(
        f"(() => {{ const n = {loss}; return n.length > 0 && Math.max(...n) < 6; }})()", timeout=120_000, polling=50
    )
    page.wait_for_function("document.querySelector('.lg-train-status').innerText.includes('finished')", timeout=180_000)
    assert max(page.evaluate(loss)) == 6  # 3 tasks x 2 epochs, every epoch drawn
    page.close()


def test_a_link_that_escapes_the_runs_root_shows_a_message_in_the_page(server, browser):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(server + "?run=..%2F..%2Fetc", timeout=120_000)
    page.wait_for_selector(".lg-app-message >> text=link ignored", timeout=120_000)
    text = page.inner_text(".lg-app-message")
    assert "runs root" in text and "Traceback" not in page.inner_text("body")
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
        f"(() => {{ const d = ({PLOT_BY_TYPE})('heatmap'); return d && d.data[0].z && d.data[0].z.length > 0; }})()",
        timeout=180_000,
    )
    assert page.evaluate("document.querySelectorAll('.js-plotly-plot').length") == 3
    before = heatmap_z(page)
    page.focus(".lg-tau .noUi-handle")
    page.keyboard.press("ArrowRight")
    page.wait_for_function(f"JSON.stringify(({PLOT_BY_TYPE})('heatmap').data[0].z) !== {before!r}", timeout=30_000)
    assert errors == []
    page.close()
