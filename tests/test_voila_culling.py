"""Voila honours jupyter_server's kernel culling as `make explore` sets it: a closed page's kernel goes, an open one
stays."""

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest
from conftest import REPO, free_port, stop_server, wait_for_port
from test_browser import CHROMIUM, CHROMIUM_ARGS

pytestmark = pytest.mark.browser


def kernels(server: subprocess.Popen) -> set[int]:
    """Process ids of the kernels the server started."""
    found = set()
    for child in psutil.Process(server.pid).children(recursive=True):
        try:
            if "ipykernel" in " ".join(child.cmdline()):
                found.add(child.pid)
        except psutil.NoSuchProcess:
            continue
    return found


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout} s")
        time.sleep(0.5)


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_explore_culls_the_kernel_of_a_closed_page_and_keeps_an_open_ones(tmp_path):
    if not CHROMIUM.exists():
        pytest.skip("needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)")
    playwright_api = pytest.importorskip("playwright.sync_api")
    venv, port = Path(sys.executable).parent.parent, free_port()
    command = ["make", "--no-print-directory", "-o", f"{venv}/.installed", "explore", f"VENV={venv}", f"PORT={port}"]
    env = dict(os.environ, LEARNGENE_RUNS=str(tmp_path / "runs"))
    log = tmp_path / "explore.log"
    with open(log, "wb") as out:
        server = subprocess.Popen(
            command + ["CULL_IDLE=4", "CULL_INTERVAL=1"],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for_port(port, server)
        with playwright_api.sync_playwright() as p:
            chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = chromium.new_page()
            page.goto(f"http://127.0.0.1:{port}/", timeout=180_000)
            page.wait_for_selector(".lg-app", timeout=180_000)
            for _ in range(2):  # two visitors who load the page and leave at once
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=300).read()
            wait_for(lambda: len(kernels(server)) >= 3, 120, "a kernel for each page (and the pre-heated one)")
            wait_for(lambda: len(kernels(server)) <= 2, 120, "culling the closed pages' kernels")
            time.sleep(6)  # longer than CULL_IDLE: the open page's kernel is connected, so it stays and still answers
            page.click("button.lg-more-options")  # the first screen (no runs): the kernel must show panel 1's menus
            page.wait_for_selector(".lg-preset select", state="visible", timeout=30_000)
            chromium.close()
        text = log.read_text()
        assert "Culling kernels with idle durations > 4 seconds at 1 second intervals" in text, text[-3000:]
        culled = [line for line in text.splitlines() if "Culling 'idle' kernel" in line]
        assert len(culled) >= 2 and all("with 0 connections" in line for line in culled), culled
    finally:
        stop_server(server, group=True)
