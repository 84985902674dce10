"""A class on one server: N kernels run notebook 01's training cell at once against one shared engine.

Starts a LocalCluster (the engine `explorer.server` gives a class server), then N processes that run notebook 01's
setup and data cells and, together, its training cell (the scenario of tests/test_class_of_30.py, on --preset).
Prints each kernel's wait in that cell and how many times the engine ran the job: one training serves all of them.
Usage: python benchmarks/bench_classroom.py [--preset fast] [--students 5] [--workers 2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from test_class_of_30 import executions, run_students, waits  # noqa: E402

from core.collective.config import preset  # noqa: E402
from core.jobs.cluster import local_cluster  # noqa: E402
from core.tutorial.classroom import ClassRun, class_job  # noqa: E402


def main() -> int:
    """Run the scenario once and print the waits."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="fast", choices=("fast", "smoke"))
    parser.add_argument("--students", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    cluster = local_cluster(args.workers, dashboard=False)
    try:
        with tempfile.TemporaryDirectory(prefix="bench-classroom-") as folder:
            started = time.monotonic()
            results = run_students(cluster.scheduler_address, Path(folder), args.preset, args.students)
            total = time.monotonic() - started
            failed = [err for code, _, err in results if code != 0]
            if failed:
                print(failed[0], file=sys.stderr)
                return 1
            job = class_job(ClassRun(f"{args.preset}-glyphs", preset(args.preset, dataset="glyphs", seed=0)), 1)
            ran = executions(cluster.scheduler_address, job.key)
    finally:
        cluster.close()
    seconds = waits(results)
    print(
        f"{args.students} kernels, {args.preset} preset, {args.workers}-worker engine: the job ran {ran} time(s); "
        f"waits in the training cell {', '.join(f'{w:.1f}' for w in seconds)} s (the last, {seconds[-1]:.1f} s); "
        f"{total:.0f} s with the kernels' start"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
