"""`make explore` serves the app on 127.0.0.1 unless HOST asks for another address, and Ctrl-C stops it quietly."""

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import REPO, free_port, stop_server

from explorer.server import JOB_THREADS, default_workers

LOCALHOST_V4 = "0100007F"  # 127.0.0.1 as /proc/net/tcp writes it
ANY_V4 = "00000000"


def listening(port: int) -> set[str]:
    """The local addresses (kernel's hex notation) with a socket listening on `port`."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        path = Path(table)
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            address, hex_port = fields[1].rsplit(":", 1)
            if int(hex_port, 16) == port and fields[3] == "0A":
                found.add(address)
    return found


NEEDS = pytest.mark.skipif(
    not Path("/proc/net/tcp").exists() or shutil.which("make") is None, reason="needs Linux /proc and make"
)


def start_explore(tmp_path: Path, port: int, *extra: str, **popen: object) -> subprocess.Popen:
    """`make explore` on `port` in a process group of its own, its output in tmp_path/explore.log."""
    venv = Path(sys.executable).parent.parent
    command = ["make", "--no-print-directory", "-o", f"{venv}/.installed", "explore", f"VENV={venv}", f"PORT={port}"]
    env = dict(os.environ, LEARNGENE_RUNS=str(tmp_path / "runs"))
    with open(tmp_path / "explore.log", "wb") as log:
        return subprocess.Popen(
            [*command, *extra], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, **popen
        )


@NEEDS
@pytest.mark.parametrize("host, expected", [(None, {LOCALHOST_V4}), ("0.0.0.0", {ANY_V4})])
def test_make_explore_listens_on_localhost_unless_asked(tmp_path, host, expected):
    port = free_port()
    proc = start_explore(tmp_path, port, *([f"HOST={host}"] if host else []))
    try:
        deadline = time.monotonic() + 120
        while not listening(port) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert listening(port) == expected, (tmp_path / "explore.log").read_text()[-2000:]
    finally:
        stop_server(proc, group=True)


@NEEDS
def test_ctrl_c_stops_the_server_its_kernels_and_workers_with_one_line_and_no_traceback(tmp_path):
    port = free_port()
    proc = start_explore(tmp_path, port, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 120
        while not listening(port) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=120).read()  # a visitor; the pool refills
        time.sleep(1)  # the refilled pool's kernel is running the notebook when Ctrl-C comes
        os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole foreground group
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            stop_server(proc, group=True)
    log = (tmp_path / "explore.log").read_text()
    stopped = log[log.rindex("Kernel pool") :]
    assert "Traceback" not in stopped and "Error" not in stopped, stopped
    assert "Learngene Explorer stopped: Voila, its kernels and the Dask workers." in stopped
    assert not listening(port)


def test_make_explore_gives_each_training_two_threads_by_default_so_a_page_trains_at_the_command_lines_speed():
    assert JOB_THREADS == 2
    assert [default_workers(cores) for cores in (1, 2, 3, 4, 16)] == [1, 1, 1, 2, 8]
