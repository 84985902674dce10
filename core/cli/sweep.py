"""`learngene sweep SPEC.toml --out DIR`: a grid of collective runs and few-shot settings, as jobs on Dask."""

from __future__ import annotations

import argparse
import sys

from core.cli.arguments import int_in, path_text, print_json


def cmd_sweep(args: argparse.Namespace) -> int:
    """Run every unfinished job of the spec on a Dask cluster and write the sweep's tables into --out."""
    from core.jobs.workers import scheduler_address, start_fork_server

    start_fork_server(args.scheduler)  # before Dask is imported here: its imports overlap ours and the planning
    from tqdm import tqdm

    from core.jobs.cluster import job_threads, start_engine
    from core.jobs.sweep import plan_sweep, run_plan, sweep_outputs
    from core.jobs.sweep_spec import parse_spec
    from core.jobs.sweep_tables import write_tables

    spec = parse_spec(args.spec)
    store = sweep_outputs(args.out)
    engine = None
    try:
        threads = job_threads(scheduler_address(args.scheduler), args.workers, args.threads)
        plan = plan_sweep(spec, store, threads)
        _say(args, f"{plan.total} jobs: {plan.total - plan.left} already finished, {plan.left} to run")
        ran = plan.left
        if ran:
            engine = start_engine(store, scheduler=args.scheduler, workers=args.workers, threads=threads)
            if engine.dashboard:
                _say(args, f"Dask dashboard: {engine.dashboard}")
            bars = {
                kind: tqdm(total=total, desc=f"{kind} jobs", unit="job", file=sys.stderr, disable=args.quiet)
                for kind, total in _left_by_kind(plan).items()
            }
            try:
                run_plan(plan, engine, on_done=lambda kind: bars[kind].update(1))
            finally:
                for bar in bars.values():
                    bar.close()
            plan.finished = {c.job.key for c in plan.cells} | {job.key for job, _ in plan.runs}
    finally:
        if engine is not None:
            engine.close()
    paths = write_tables(plan, store.root)
    summary = {"out": str(store.root), "jobs": plan.total, "ran": ran, "files": [str(p) for p in paths.values()]}
    if args.markdown:
        from core.jobs.sweep_markdown import sweep_markdown

        sys.stdout.write(sweep_markdown(plan))
    elif args.json:
        print_json(summary)
    else:
        print(f"sweep {store.root}: {plan.total} jobs ({ran} run now); tables: {', '.join(paths)}")
    return 0


def _left_by_kind(plan) -> dict[str, int]:
    left: dict[str, set[str]] = {"collective": set(), "fewshot": set()}
    for job, _ in plan.runs:
        if job.key not in plan.finished:
            left["collective"].add(job.key)
    for cell in plan.cells:
        if cell.job.key not in plan.finished:
            left["fewshot"].add(cell.job.key)
    return {kind: len(keys) for kind, keys in left.items()}


def _say(args: argparse.Namespace, line: str) -> None:
    if not args.quiet:
        sys.stderr.write(f"learngene sweep: {line}\n")


def register(sub: argparse._SubParsersAction) -> None:
    """Add `sweep` to the main parser."""
    from core.cli.remote import scheduler_text

    p = sub.add_parser(
        "sweep",
        help="run a grid of collective runs and few-shot settings as jobs on Dask, and tabulate them over seeds",
        description="Every collective run of the spec's [collective] grid, every [individual] setting on each; jobs "
        "already finished in --out are reused, so the same command finishes a stopped sweep.",
    )
    p.add_argument("spec", type=path_text, help="the sweep spec (TOML; see examples/)")
    p.add_argument("--out", type=path_text, required=True, help="folder for the runs, results and tables")
    p.add_argument(
        "--scheduler",
        type=scheduler_text,
        help="address of a running Dask scheduler (default: $DASK_SCHEDULER_ADDRESS, else a local cluster)",
    )
    p.add_argument("--workers", type=int_in(1, 1024), help="worker processes of the local cluster (default: cores)")
    p.add_argument(
        "--threads",
        type=int_in(1, 1024),
        help="torch threads per job (default: cores / workers on a local cluster, 1 on another); part of the job keys",
    )
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.add_argument("--json", action="store_true", help="print a JSON summary")
    p.add_argument(
        "--markdown",
        action="store_true",
        help="print the Markdown tables of docs/results.md: accuracy and gain over scratch across seeds, correlations",
    )
    p.set_defaults(func=cmd_sweep)
