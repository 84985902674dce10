"""Shared fixtures: a private dataset cache per test session, and one trained `smoke` run."""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from hypothesis import settings

REPO = Path(__file__).resolve().parents[1]


def pytest_configure(config: pytest.Config) -> None:
    """Keep the glyph cache out of the user's home: one fresh cache per test session."""
    if "LEARNGENE_TEST_KEEP_CACHE" not in os.environ:
        os.environ["LEARNGENE_CACHE"] = tempfile.mkdtemp(prefix="learngene-test-cache-")


# Property tests draw the same cases in every run (derandomized from each test's source: `make test`, and pytest by
# default); `--hypothesis-profile=random` draws new cases.
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("random", derandomize=False)
settings.load_profile("ci")


@pytest.fixture(autouse=True)
def torch_threads() -> Iterator[None]:
    """Give the next test torch's thread count as this one found it (a job may pick its own)."""
    threads = torch.get_num_threads()
    yield
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def shared_data() -> Path | None:
    """Where the real datasets live: $LEARNGENE_DATA, else ../shared/data beside the repository."""
    env = os.environ.get("LEARNGENE_DATA")
    for candidate in ([Path(env)] if env else []) + [REPO.parent / "shared" / "data"]:
        if candidate.is_dir():
            return candidate
    return None


def free_port() -> int:
    """A TCP port that nothing listens on now, on any address, drawn below the kernel's ephemeral range: the Dask
    cluster and the kernels a server starts bind port 0, which the kernel serves from that range, so none of them can
    take the port between this call and the server's own bind."""
    ephemeral = Path("/proc/sys/net/ipv4/ip_local_port_range")
    low = int(ephemeral.read_text().split()[0]) if ephemeral.exists() else 32768
    draw = random.SystemRandom()
    while True:
        port = draw.randrange(10000, low)
        with socket.socket() as s:
            try:
                s.bind(("", port))
            except OSError:
                continue
            return port


def wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 90) -> None:
    """Wait until the server `proc` accepts connections on `port` (it must not exit first)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with code {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"the server did not open port {port} in {timeout} s")


def stop_server(proc: subprocess.Popen, group: bool = False) -> None:
    """SIGTERM the server (or its whole process group), then SIGKILL it if it is still there after 30 s."""
    send = (lambda sig: os.killpg(proc.pid, sig)) if group else proc.send_signal
    send(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        send(signal.SIGKILL)
        proc.wait()


SHORT = {"tasks": 3, "epochs": 2}  # a smoke stream cut short, for tests that only need a few finished tasks
SHORT_ARGS = ["--tasks", "3", "--epochs", "2"]


@pytest.fixture(scope="session")
def short_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished `smoke` collective run of 3 tasks x 2 epochs (trained once per session)."""
    from core.collective.config import preset
    from core.collective.training import train_collective

    run_dir = tmp_path_factory.mktemp("short") / "run"
    train_collective(preset("smoke", **SHORT), run_dir)
    return run_dir


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished `smoke` collective run on glyphs (trained once per session)."""
    from core.collective.config import preset
    from core.collective.training import train_collective

    run_dir = tmp_path_factory.mktemp("smoke") / "run"
    train_collective(preset("smoke"), run_dir)
    return run_dir


@pytest.fixture(scope="module")
def runs(tmp_path_factory, smoke_run):
    """A runs root holding a private copy of the smoke run, named `smoke` (one per test module; modules with
    other runs define their own)."""
    root = tmp_path_factory.mktemp("runs")
    shutil.copytree(smoke_run, root / "smoke", ignore=shutil.ignore_patterns(".lock", "export"))
    return root
