"""Explorer responsiveness, measured in headless Chromium against a real Voila server.

(a) time from opening the Voila URL to an interactive heatmap (heatmap drawn, tau slider ready), with a run on disk
    (voila.json pre-heats a kernel; loads are spaced by --gap seconds so that Voila can refill its pool);
(b) latency of a tau change: slider key press in the browser to the redrawn heatmap in the browser, the old way
    (LEARNGENE_REDRAW=whole: a new chart per change) against the new (the shown chart updated in place), one server
    and one browser each (two tabs of one browser share a renderer thread, so one page's drawing would delay the
    other's), the moves taken in turns so that both see the same machine load, with a pause after each.
Targets on 2 CPU cores: (a) < 10 s, (b) <= 50 ms median on an idle machine. Prints medians and extremes and the load.
Usage: python benchmarks/bench_explorer.py [--runs-root DIR --run NAME] [--loads 3] [--gap 15] [--moves 12]
[--ways in-place,whole] [--settle 10]
(without --runs-root a `smoke` run is trained once into $LEARNGENE_CACHE/bench-runs, about half a minute).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from playwright.sync_api import sync_playwright
from voila_page import CHROMIUM, CHROMIUM_ARGS, start_voila

HEATMAP = (
    "Array.from(document.querySelectorAll('.js-plotly-plot')).find(d => d.data && d.data.length && "
    "d.data[0].type === 'heatmap')"
)
PAUSE_MS = 400  # after each move, so that a chart still being drawn does not delay the next move's
WAYS = {"whole": "old: a new chart per move (whole)", "in-place": "new: the shown chart updated (in-place)"}
READY = (
    f"(() => {{ const d = {HEATMAP}; "
    "return !!(d && d.data[0].z && d.data[0].z.length && document.querySelector('.lg-tau .noUi-handle')); })()"
)


def cached_run() -> tuple[Path, str]:
    """A finished smoke run in the cache (trained on first use)."""
    from core.collective.config import preset
    from core.collective.training import train_collective

    cache = Path(os.environ.get("LEARNGENE_CACHE") or Path(tempfile.gettempdir()) / "learngene-cache")
    root = cache / "bench-runs"
    started = time.perf_counter()
    train_collective(preset("smoke"), root / "smoke")
    print(f"smoke run at {root / 'smoke'} (ready in {time.perf_counter() - started:.1f} s)")
    return root, "smoke"


def launch(root: Path, run: str, log: Path, redraw: str) -> tuple[subprocess.Popen, str]:
    """Voila over the runs root `root`, showing `run` first, redrawing the map on tau moves the `redraw` way."""
    env = dict(os.environ, LEARNGENE_RUNS=str(root), LEARNGENE_RUN=run, LEARNGENE_REDRAW=redraw)
    return start_voila(env, log, timeout=90)


def time_to_interactive(browser, url: str) -> float:
    """Seconds from navigation start to a drawn heatmap with a usable tau slider."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    started = time.perf_counter()
    page.goto(url, timeout=120_000)
    page.wait_for_function(READY, timeout=120_000, polling=50)
    elapsed = time.perf_counter() - started
    page.close()
    return elapsed


def open_map(browser, url: str):
    """A page of the app with its heatmap drawn and the tau slider focused."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(url, timeout=120_000)
    page.wait_for_function(READY, timeout=120_000)
    page.focus(".lg-tau .noUi-handle")
    return page


def tau_latency(page, move: int) -> float:
    """Seconds from a tau key press to a changed heatmap, measured in the page with performance.now()."""
    before = page.evaluate(f"JSON.stringify({HEATMAP}.data[0].z)")
    page.evaluate("window.__lgStart = performance.now()")
    page.keyboard.press("ArrowRight" if (move // 3) % 2 == 0 else "ArrowLeft")
    handle = page.wait_for_function(
        f"JSON.stringify({HEATMAP}.data[0].z) !== {before!r} ? performance.now() - window.__lgStart : false",
        timeout=30_000,
        polling="raf",
    )
    return handle.json_value() / 1000


def load() -> str:
    """The machine's load averages (1, 5, 15 minutes), as uptime shows them."""
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs-root", help="runs root holding a finished run (default: a cached smoke run)")
    parser.add_argument("--run", default="smoke", help="run name under the runs root")
    parser.add_argument("--loads", type=int, default=3, help="page loads to time")
    parser.add_argument("--gap", type=float, default=15.0, help="seconds between page loads (0: back to back)")
    parser.add_argument("--moves", type=int, default=12, help="tau changes to time")
    parser.add_argument(
        "--settle",
        type=float,
        default=10.0,
        help="seconds between opening the maps and the first move (Voila "
        "starts a spare kernel for the next visitor meanwhile)",
    )
    parser.add_argument(
        "--ways",
        default=",".join(WAYS),
        help="redraw ways to time: in-place alone measures the new way on a machine "
        "without the old way's server and browser",
    )
    args = parser.parse_args()
    ways = [way for way in args.ways.split(",") if way]
    if not ways or set(ways) - set(WAYS) or "in-place" not in ways:
        raise SystemExit(f"--ways: in-place, optionally with whole (got {args.ways!r})")
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"needs Debian's chromium at {CHROMIUM} (apt-get install chromium)")
    root, run = (Path(args.runs_root), args.run) if args.runs_root else cached_run()
    log_dir = Path(tempfile.mkdtemp(prefix="bench-explorer-"))
    servers = {way: launch(root, run, log_dir / f"voila-{way}.log", way) for way in ways}
    try:
        with sync_playwright() as p:
            browsers = {way: p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS) for way in ways}
            loads = []
            for _ in range(args.loads):
                time.sleep(args.gap)
                loads.append(time_to_interactive(browsers["in-place"], servers["in-place"][1]))
            pages = {way: open_map(browsers[way], url) for way, (_, url) in servers.items()}
            time.sleep(args.settle)
            load_before = load()
            taus: dict[str, list[float]] = {way: [] for way in ways}
            for move in range(args.moves):
                for way, page in pages.items():
                    taus[way].append(tau_latency(page, move))
                    page.wait_for_timeout(PAUSE_MS)
            load_after = load()
            for browser in browsers.values():
                browser.close()
    finally:
        for proc, _ in servers.values():
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
        shutil.rmtree(log_dir, ignore_errors=True)
    print(f"machine: {os.cpu_count()} CPU cores; run {root / run}")
    if loads:
        print(
            f"open URL -> interactive heatmap: median {statistics.median(loads):.2f} s, max {max(loads):.2f} s over "
            f"{len(loads)} loads (target < 10 s)"
        )
    print(f"tau change -> redrawn heatmap, {args.moves} moves each, taken in turns (target <= 50 ms median, idle):")
    print(f"  load average (1, 5, 15 min) before: {load_before}; after: {load_after}")
    print(f"  {'way':<42}{'median':>10}{'max':>10}")
    for way, values in taus.items():
        label = WAYS[way]
        print(f"  {label:<42}{statistics.median(values) * 1000:>7.0f} ms{max(values) * 1000:>7.0f} ms")


if __name__ == "__main__":
    main()
