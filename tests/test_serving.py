"""`make explore` serves the app on 127.0.0.1 unless HOST asks for another address."""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, free_port, stop_server

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


@pytest.mark.skipif(
    not Path("/proc/net/tcp").exists() or shutil.which("make") is None, reason="needs Linux /proc and make"
)
@pytest.mark.parametrize("host, expected", [(None, {LOCALHOST_V4}), ("0.0.0.0", {ANY_V4})])
def test_make_explore_listens_on_localhost_unless_asked(tmp_path, host, expected):
    venv = Path(sys.executable).parent.parent
    port = free_port()
    command = ["make", "--no-print-directory", "-o", f"{venv}/.installed", "explore", f"VENV={venv}", f"PORT={port}"]
    if host:
        command.append(f"HOST={host}")
    env = dict(os.environ, LEARNGENE_RUNS=str(tmp_path / "runs"))
    with open(tmp_path / "explore.log", "wb") as log:
        proc = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 120
        while not listening(port) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert listening(port) == expected, (tmp_path / "explore.log").read_text()[-2000:]
    finally:
        stop_server(proc, group=True)
