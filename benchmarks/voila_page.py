"""What the browser benchmarks share: headless Chromium's settings and a Voila server over the explorer notebook."""

from __future__ import annotations

import random
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "explorer.ipynb"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


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


def start_voila(
    env: dict[str, str], log: Path, timeout: float = 120, options: Sequence[str] = ()
) -> tuple[subprocess.Popen, str]:
    """Voila over the explorer notebook on a free port, with `env` as its environment and extra command-line
    `options`; returns the process and the app's URL once the port accepts connections."""
    port = free_port()
    voila = Path(sys.executable).parent / "voila"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(voila), str(NOTEBOOK), "--no-browser", "--Voila.ip=127.0.0.1", f"--port={port}", *options],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc, f"http://127.0.0.1:{port}/"
        if proc.poll() is not None:
            raise SystemExit(f"voila exited early; see {log}")
        time.sleep(0.2)
    raise SystemExit(f"voila did not start in {timeout:.0f} s; see {log}")
