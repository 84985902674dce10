"""A classroom server: `explorer.server` runs one Dask cluster for every visitor; two pages that press Train on
the same settings get one training that both follow, and one page's Cancel stops only what nobody else waits for."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, free_port, stop_server, wait_for_port
from distributed import Client
from test_browser import ALLOW_EXPORTS, CHROMIUM, NOTEBOOK, Page, browser  # noqa: F401 - browser is a fixture

pytestmark = pytest.mark.browser
TRAINING = "document.querySelector('.lg-train-status').innerText.includes('training smoke-glyphs')"
CANCEL = "document.querySelector('button.lg-train-cancel').click()"  # the busy page may not settle for a pointer
PROGRESS = "/task \\d+\\/34/.test(document.querySelector('.lg-train-progress').innerText)"
SECOND_TASK = "+(/task (\\d+)\\/34/.exec(document.querySelector('.lg-train-progress').innerText) || [0, 0])[1] >= 2"


@pytest.fixture(scope="module")
def classroom(tmp_path_factory):
    """`python -m explorer.server` (a 2-worker cluster and Voila) over an empty runs root; its scheduler address."""
    if not CHROMIUM.exists():
        pytest.skip("needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)")
    site = tmp_path_factory.mktemp("classroom")
    port = free_port()
    voila = Path(sys.executable).parent / "voila"
    command = [sys.executable, "-m", "explorer.server", "--workers", "2", "--", str(voila), str(NOTEBOOK)]
    command += ["--no-browser", "--Voila.ip=127.0.0.1", f"--port={port}"]
    command += [f"--VoilaConfiguration.file_allowlist={ALLOW_EXPORTS}"]
    log = site / "server.log"
    env = dict(os.environ, LEARNGENE_RUNS=str(site / "runs"))
    with open(log, "wb") as out:
        proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    wait_for_port(port, proc, timeout=180)
    address = re.search(r"at (tcp://[\d.:]+)", log.read_text()).group(1)
    yield f"http://127.0.0.1:{port}/", site / "runs", address
    stop_server(proc)
    assert proc.returncode is not None


def collective_jobs(client: Client) -> list[str]:
    return client.run_on_scheduler(
        lambda dask_scheduler: sorted(k for k in dask_scheduler.tasks if str(k).startswith("collective-"))
    )


def press_train_on_smoke(page: Page) -> None:
    page.page.wait_for_selector("button.lg-welcome-train", state="visible", timeout=180_000)
    page.page.click("button.lg-more-options")
    page.page.select_option(".lg-preset select", "smoke")
    page.page.wait_for_timeout(500)


def test_two_pages_pressing_train_together_get_one_training_that_both_follow(classroom, browser):  # noqa: F811
    url, runs, address = classroom
    first, second = Page(browser, url), Page(browser, url)
    for page in (first, second):
        press_train_on_smoke(page)
    first.page.click("button.lg-train")
    second.page.click("button.lg-train")
    for page in (first, second):
        page.wait(TRAINING, timeout=180_000)
        page.wait(PROGRESS, timeout=300_000)  # both pages follow the training live
    with Client(address, timeout="30s") as client:
        assert len(collective_jobs(client)) == 1  # one training for two pages
        first.js(CANCEL)  # the second page still waits for it: it goes on
        first.wait("document.querySelector('.lg-train-status').innerText.includes('cancelled')", timeout=120_000)
        progress = second.text(".lg-train-progress")
        second.wait(f"document.querySelector('.lg-train-progress').innerText !== {json.dumps(progress)}", 120_000)
        second.wait(SECOND_TASK, timeout=300_000)  # a task committed before the last cancel, however busy the machine
        assert len(collective_jobs(client)) == 1
        second.js(CANCEL)  # now nobody waits: the training stops at its next check
        second.wait("document.querySelector('.lg-train-status').innerText.includes('cancelled')", timeout=120_000)
        deadline = time.monotonic() + 60
        while collective_jobs(client) and time.monotonic() < deadline:
            time.sleep(0.5)
        state = client.run_on_scheduler(
            lambda dask_scheduler: {
                str(k): (t.state, sorted(c.client_key for c in t.who_wants)) for k, t in dask_scheduler.tasks.items()
            }
        )
        assert collective_jobs(client) == [], state
    manifest = json.loads((runs / "smoke-glyphs" / "manifest.json").read_text())
    assert manifest["finished_tasks"] >= 1 and (runs / "smoke-glyphs" / "config.json").is_file()  # nothing lost
    for page in (first, second):
        assert [e for e in page.errors if "ERR_NAME_NOT_RESOLVED" not in e] == []
        page.page.close()
