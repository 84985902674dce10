"""`make explore`: one Dask cluster for the whole Voila server, shared by every visitor's kernel, stopped with it.

Usage: python -m explorer.server [--workers N] -- VOILA ARGUMENTS...
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from collections.abc import Sequence

from core.jobs.cluster import ADDRESS_VARIABLE, local_cluster
from core.jobs.shared import THREADS_VARIABLE


def main(argv: Sequence[str] | None = None) -> int:
    """Start the cluster, run Voila with its address in the environment, and stop both together."""
    parser = argparse.ArgumentParser(prog="python -m explorer.server", description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=None, help="worker processes (default: one per core)")
    parser.add_argument("voila", nargs=argparse.REMAINDER, help="Voila's command line, after --")
    args = parser.parse_args(argv)
    command = args.voila[1:] if args.voila[:1] == ["--"] else args.voila
    if not command:
        parser.error("give Voila's command line after --")
    ignore = signal.signal(signal.SIGINT, signal.SIG_IGN)  # its workers inherit this: Ctrl-C is the server's to handle
    try:
        cluster = local_cluster(args.workers)
    finally:
        signal.signal(signal.SIGINT, ignore)
    try:
        address = cluster.scheduler_address
        workers = len(cluster.workers)
        print(f"Dask: {workers} workers at {address}, dashboard {cluster.dashboard_link}", flush=True)
        threads = str(max(1, (os.cpu_count() or 1) // workers))  # workers x threads = cores, as for a sweep
        voila = subprocess.Popen(  # a session of its own: the terminal's Ctrl-C reaches the server, which stops Voila
            command,
            env=dict(os.environ, **{ADDRESS_VARIABLE: address, THREADS_VARIABLE: threads}),
            start_new_session=True,
        )
        stop = lambda signum, frame: voila.send_signal(signal.SIGTERM)  # noqa: E731 - Voila stops, then the cluster
        signal.signal(signal.SIGTERM, stop)
        try:
            return voila.wait()
        except KeyboardInterrupt:
            voila.send_signal(signal.SIGTERM)
            voila.wait()
            return 0
    finally:
        cluster.close()


if __name__ == "__main__":
    sys.exit(main())
