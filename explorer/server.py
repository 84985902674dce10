"""`make explore`: one Dask cluster for the whole Voila server, shared by every visitor's kernel, stopped with it.

Usage: python -m explorer.server [--workers N] -- VOILA ARGUMENTS...
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from typing import IO

from core.jobs.cluster import job_threads, local_cluster
from core.jobs.shared import THREADS_VARIABLE
from core.jobs.workers import ADDRESS_VARIABLE

# torch threads per worker by default: a page's training then runs at about the command line's speed (2 cores: the
# first screen's whole `fast` run 1.12x the CLI on one worker of 2 threads; its first 10 tasks 1.08-1.12x on one worker
# of 2 threads, 1.43x on two of 1; docs/benchmarks.md)
JOB_THREADS = 2


class Log(threading.Thread):
    """Voila's log (its kernels' too) copied to the terminal until the server is stopped; what it prints while it
    shuts down is dropped (a kernel stopped while it ran the notebook prints a traceback about its closed sockets)."""

    def __init__(self, stream: IO[bytes]) -> None:
        super().__init__(daemon=True)
        self.stream = stream
        self.stopping = threading.Event()

    def run(self) -> None:
        for line in self.stream:
            if not self.stopping.is_set():
                sys.stderr.buffer.write(line)
                sys.stderr.buffer.flush()


def default_workers(cores: int) -> int:
    """Worker processes for a machine of `cores` cores: one per JOB_THREADS cores, at least one."""
    return max(1, cores // JOB_THREADS)


def main(argv: Sequence[str] | None = None) -> int:
    """Start the cluster, run Voila with its address in the environment, and stop both together."""
    parser = argparse.ArgumentParser(prog="python -m explorer.server", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--workers",
        type=int,
        default=default_workers(os.cpu_count() or 1),
        help=f"worker processes (default: one per {JOB_THREADS} cores, so that one training has {JOB_THREADS} threads)",
    )
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
        threads = str(job_threads(None, workers, None))  # workers x threads = cores, as for a sweep
        voila = subprocess.Popen(  # a session of its own: the terminal's Ctrl-C reaches the server, which stops Voila
            command,
            env=dict(os.environ, **{ADDRESS_VARIABLE: address, THREADS_VARIABLE: threads}),
            start_new_session=True,
            stderr=subprocess.PIPE,
        )
        log = Log(voila.stderr)
        log.start()

        def stop(signum: int = signal.SIGTERM, frame: object = None) -> None:
            log.stopping.set()
            voila.send_signal(signal.SIGTERM)

        signal.signal(signal.SIGTERM, stop)
        try:
            code = voila.wait()
        except KeyboardInterrupt:
            stop()
            voila.wait()
            code = 0
        log.join(timeout=5)
        return code
    finally:
        cluster.close()
        print("Learngene Explorer stopped: Voila, its kernels and the Dask workers.", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
