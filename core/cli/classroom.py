"""`learngene classroom`: before class, draw tutorial 04's shapes and train every collective run the tutorials ask for,
as the same jobs (same keys) the notebooks submit, so that every kernel finds them finished."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from core.cli.arguments import int_in, path_text, print_json


def cmd_classroom(args: argparse.Namespace) -> int:
    """Draw the shapes, then train the unfinished tutorial runs together on a Dask cluster; finished ones are kept."""
    from core.collective.run_folders import runs_root
    from core.data.shapes import ensure_shapes
    from core.jobs.cluster import job_threads, start_engine
    from core.jobs.shared import THREADS_VARIABLE, shared_store
    from core.jobs.workers import scheduler_address
    from core.tutorial.classroom import SHAPES_FOLDER, Tenths, class_job, class_runs, finished_run, recorded_threads

    runs = Path(args.runs or runs_root()).expanduser().resolve()
    shapes = ensure_shapes(runs / SHAPES_FOLDER)
    _say(args, f"shapes for tutorial 04: {shapes}")
    page = os.environ.get(THREADS_VARIABLE, "")
    threads = args.threads or job_threads(
        scheduler_address(args.scheduler), args.workers, int(page) if page.isdigit() and int(page) > 0 else None
    )
    wanted = class_runs(args.preset, runs)
    done = {r.name for r in wanted if finished_run(runs / r.name, r.config) is not None}
    # A run with finished tasks resumes with the thread count it was trained with, as in the notebooks.
    jobs = [class_job(r, recorded_threads(runs / r.name) or threads) for r in wanted]
    left = [job for job in jobs if job.name not in done]
    _say(args, f"{len(jobs)} runs: {len(done)} already trained, {len(left)} to train")
    if left:
        engine = start_engine(shared_store(runs), scheduler=args.scheduler, workers=args.workers, threads=threads)
        try:
            engine.check_workers_see([str(runs), *(job.root for job in left)])
            futures = [
                engine.submit(job, listeners=[Tenths(job.name, job.config.tasks, lambda line: _say(args, line))])
                for job in left
            ]
            try:
                for future in futures:
                    engine.outcome(future)
            except KeyboardInterrupt:
                for future in futures:
                    engine.cancel(future)
                raise
        finally:
            engine.close()
    summary = {"runs": str(runs), "shapes": str(shapes), "trained": [j.name for j in left], "kept": sorted(done)}
    if args.json:
        print_json(summary)
    else:
        print(f"classroom {runs}: {len(jobs)} tutorial runs ready ({len(left)} trained now), shapes in {shapes}")
    return 0


def _say(args: argparse.Namespace, line: str) -> None:
    if not args.quiet:
        sys.stderr.write(f"learngene classroom: {line}\n")


def register(sub: argparse._SubParsersAction) -> None:
    """Add `classroom` to the main parser."""
    from core.cli.remote import scheduler_text

    p = sub.add_parser(
        "classroom",
        help="before class: draw tutorial 04's shapes and train every collective run the tutorials use",
        description="Draws the shapes of tutorial 04 into RUNS/shapes-images and trains the tutorials' collective "
        "runs (glyphs, glyphs with the shared head, shapes, and CIFAR-100 when its data are there) as the jobs the "
        "notebooks ask for; finished runs are kept, so the same command finishes an interrupted preparation.",
    )
    p.add_argument("--preset", choices=("fast", "smoke"), default="fast", help="the tutorials' preset (default fast)")
    p.add_argument("--runs", type=path_text, help="the runs folder (default: $LEARNGENE_RUNS, else runs/)")
    p.add_argument(
        "--scheduler",
        type=scheduler_text,
        help="address of a running Dask scheduler (default: $DASK_SCHEDULER_ADDRESS, else a local cluster)",
    )
    p.add_argument(
        "--workers",
        type=int_in(1, 1024),
        help="worker processes of the local cluster (default: cores); give the class server's --workers",
    )
    p.add_argument(
        "--threads",
        type=int_in(1, 1024),
        help="torch threads per job (default: cores / workers on a local cluster, 1 on another); part of the job keys",
    )
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.add_argument("--json", action="store_true", help="print a JSON summary")
    p.set_defaults(func=cmd_classroom)
