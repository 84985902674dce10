"""Training the collective model from the explorer page: wall time with 1 and 2 torch threads, side by side.

Each round starts Voila on an empty runs root (the first screen), opens it in headless Chromium, presses the first
screen's one button (the fast preset on glyphs, or --preset) and waits until panel 1's progress label reaches task
--tasks + 1 (then cancels), or with --tasks 0 until the run finished. The thread counts alternate (1, 2, 1, 2, ...)
so that a change in the machine's load hits both; "auto" leaves OMP_NUM_THREADS unset (the page then uses
core.threads.default_threads: every core).
Prints each round, the cores other processes kept busy just before it, and medians.
Usage: python benchmarks/bench_page_training.py [--threads 1,2] [--rounds 2] [--preset fast] [--tasks 5]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from voila_page import CHROMIUM, CHROMIUM_ARGS, start_voila  # noqa: E402


def busy_cores(window: float) -> float:
    """How many cores other processes keep busy now: the machine's CPU time over `window` seconds, minus this
    process's (Linux /proc/stat; elsewhere the 1-minute load average). Reported beside each round, never used to
    choose a thread count."""
    stat = Path("/proc/stat")
    if not stat.is_file():
        return os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0

    def sample() -> tuple[float, float, float]:
        values = [float(v) for v in stat.read_text().splitlines()[0].split()[1:]]
        idle = values[3] + (values[4] if len(values) > 4 else 0.0)
        own = os.times()
        return sum(values) / os.sysconf("SC_CLK_TCK"), idle / os.sysconf("SC_CLK_TCK"), own.user + own.system

    total0, idle0, own0 = sample()
    time.sleep(window)
    total1, idle1, own1 = sample()
    elapsed = (total1 - total0) / (os.cpu_count() or 1)
    if elapsed <= 0:
        return 0.0
    return max(0.0, ((total1 - total0) - (idle1 - idle0) - (own1 - own0)) / elapsed)


def launch(root: Path, threads: str, log: Path) -> tuple[subprocess.Popen, str]:
    """Voila over the empty runs root `root`, with OMP_NUM_THREADS set unless `threads` is "auto"."""
    env = dict(os.environ, LEARNGENE_RUNS=str(root))
    env.pop("OMP_NUM_THREADS", None)
    if threads != "auto":
        env["OMP_NUM_THREADS"] = threads
    return start_voila(env, log)


def one_round(browser, threads: str, preset: str, tasks: int) -> tuple[float, str]:
    """Seconds from the click to task `tasks` + 1 starting (0: to "finished"), and the status line (it names the
    cores used)."""
    work = Path(tempfile.mkdtemp(prefix="bench-page-training-"))
    proc, url = launch(work / "runs", threads, work / "voila.log")
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(url, timeout=180_000)
        page.wait_for_selector("button.lg-welcome-train", state="visible", timeout=180_000)
        if preset != "fast":
            page.click("button.lg-more-options")
            page.select_option(".lg-preset select", preset)
        page.wait_for_timeout(1000)
        started = time.perf_counter()
        page.click("button.lg-welcome-train" if preset == "fast" else "button.lg-train")
        page.wait_for_function(
            "document.querySelector('.lg-train-status').innerText.includes('on ')", timeout=120_000, polling=200
        )
        status = page.inner_text(".lg-train-status")
        done = (
            f"document.querySelector('.lg-train-progress').innerText.includes('task {tasks + 1}/')"
            if tasks
            else "document.querySelector('.lg-train-status').innerText.includes('finished')"
        )
        page.wait_for_function(done, timeout=3_600_000, polling=200)
        elapsed = time.perf_counter() - started
        if tasks:
            page.click("button.lg-train-cancel")
            page.wait_for_function(
                "document.querySelector('.lg-train-status').innerText.includes('cancelled')", timeout=120_000
            )
        page.close()
        return elapsed, status
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts (or auto) to alternate")
    parser.add_argument("--rounds", type=int, default=2, help="rounds per thread count")
    parser.add_argument("--preset", default="fast", help="collective preset to train (fast or smoke)")
    parser.add_argument("--tasks", type=int, default=5, help="time this many tasks, then cancel (0: the whole run)")
    args = parser.parse_args()
    choices = args.threads.split(",")
    times: dict[str, list[float]] = {c: [] for c in choices}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for r in range(args.rounds):
            for threads in choices:
                busy = busy_cores(1.0)
                elapsed, status = one_round(browser, threads, args.preset, args.tasks)
                times[threads].append(elapsed)
                cores = re.search(r"with (\d+) thread", status)
                used = cores.group(1) if cores else "?"
                print(
                    f"round {r + 1}, threads {threads} (page used {used}): {elapsed:.1f} s; "
                    f"{busy:.1f} of {os.cpu_count()} cores busy before",
                    flush=True,
                )
        browser.close()
    what = f"first {args.tasks} tasks" if args.tasks else "whole run"
    for threads, values in times.items():
        rounded = [round(v, 1) for v in values]
        print(f"threads {threads}, {args.preset} preset, {what}: median {statistics.median(values):.1f} s {rounded}")


if __name__ == "__main__":
    main()
