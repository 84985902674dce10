"""Workers forked from a fork server that imported torch once, against workers spawned as Dask does by default.

Side by side, rounds alternating which goes first, each round in a fresh process (so each starts its own fork
server, as a new `learngene sweep` or `make explore` does): the seconds from asking for a 2-worker LocalCluster
(core.jobs.cluster.local_cluster) to both workers having run a first job that uses torch and the engine, and each
worker's memory after a small convolutional training step (RSS and PSS from /proc/PID/smaps_rollup; PSS splits pages
shared with the fork server among the processes that share them), with the fork server's own. Linux only.
Usage: python benchmarks/bench_workers.py [--rounds 3] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from multiprocessing import forkserver
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def first_job(_: int) -> int:
    """A worker's first job: torch and the engine in use, one training step of a small conv net; its pid."""
    import torch

    import core.jobs.execute  # noqa: F401 - what a real job imports

    torch.set_num_threads(1)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 16, 3), torch.nn.ReLU(), torch.nn.Conv2d(16, 32, 3))
    net(torch.randn(32, 1, 28, 28)).sum().backward()
    return os.getpid()


def memory(pid: int) -> dict[str, float]:
    """RSS and PSS of a process in MiB."""
    values = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        key, *rest = line.split()
        if key in ("Rss:", "Pss:"):
            values[key[:-1].lower()] = int(rest[0]) / 1024
    return values


def one_side(method: str, workers: int) -> dict:
    """Start the cluster with `method`, run a first job on every worker; seconds to that point and memory."""
    from distributed import Client

    from core.jobs import cluster

    if method == "spawn":
        cluster._start_method = lambda: "spawn"
    started = time.perf_counter()
    local = cluster.local_cluster(workers, dashboard=False)
    client = Client(local)
    pids = client.gather([client.submit(first_job, i, pure=False) for i in range(2 * workers)])
    ready = time.perf_counter() - started
    server = forkserver._forkserver._forkserver_pid
    result = {
        "ready": ready,
        "workers": [memory(pid) for pid in sorted(set(pids))],
        "server": memory(server) if server else None,
    }
    client.close()
    local.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--side", choices=("forkserver", "spawn"), help=argparse.SUPPRESS)  # one side, in a child
    args = parser.parse_args()
    if args.side:
        print(json.dumps(one_side(args.side, args.workers)))
        return
    sides = ("forkserver", "spawn")
    results: dict[str, list[dict]] = {side: [] for side in sides}
    for r in range(args.rounds):
        for side in sides[r % 2 :] + sides[: r % 2]:
            command = [sys.executable, __file__, "--side", side, "--workers", str(args.workers)]
            out = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=True).stdout
            result = json.loads(out.strip().splitlines()[-1])
            results[side].append(result)
            pss = ", ".join(f"{w['pss']:.0f}" for w in result["workers"])
            server = "" if result["server"] is None else f"; fork server PSS {result['server']['pss']:.0f} MiB"
            load = os.getloadavg()[0]
            seconds = result["ready"]
            print(f"  round {r + 1}, {side}: ready in {seconds:.2f} s; worker PSS {pss} MiB{server} (load {load:.1f})")
    ready = {side: statistics.median(r["ready"] for r in results[side]) for side in sides}
    pss = {side: statistics.median(w["pss"] for r in results[side] for w in r["workers"]) for side in sides}
    rss = {side: statistics.median(w["rss"] for r in results[side] for w in r["workers"]) for side in sides}
    server = statistics.median(r["server"]["pss"] for r in results["forkserver"] if r["server"])
    print(
        f"medians of {args.rounds}: ready {ready['forkserver']:.2f} s forked against {ready['spawn']:.2f} s spawned "
        f"({ready['spawn'] / ready['forkserver']:.2f}x sooner); per worker PSS {pss['forkserver']:.0f} against "
        f"{pss['spawn']:.0f} MiB (RSS {rss['forkserver']:.0f} against {rss['spawn']:.0f}), plus {server:.0f} MiB PSS "
        f"for the fork server once: {args.workers} workers {args.workers * pss['forkserver'] + server:.0f} against "
        f"{args.workers * pss['spawn']:.0f} MiB"
    )


if __name__ == "__main__":
    main()
