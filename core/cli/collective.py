"""`learngene collective` (train the collective model) and `learngene criterion` (its layer x task matrix)."""

from __future__ import annotations

import argparse
import math

from core.cli.arguments import add_threads_option, float_in, int_in, nonempty, path_text, print_json
from core.cli.stopping import raise_if_stopped


def cmd_collective(args: argparse.Namespace) -> int:
    """Train the collective model over the source stream, committing every task to the run directory."""
    from core.cli.progress import CollectiveBar
    from core.collective.config import preset
    from core.collective.training import train_collective

    config = preset(
        args.preset,
        dataset=args.dataset,
        tasks=args.tasks,
        epochs=args.epochs,
        seed=args.seed,
        tau=args.tau,
        image_size=args.image_size,
        head=args.head,
        lr=args.lr,
        momentum=args.momentum,
        precise_bn=None if args.precise_bn is None else args.precise_bn == "on",
        images_per_class=args.images_per_class,
        extract_after_task=args.extract_after,
    )
    bar = CollectiveBar(enabled=not args.quiet)
    try:
        if args.scheduler:
            run = _on_cluster(args, config, bar)
        else:
            run = train_collective(
                config,
                args.run_dir,
                root=args.root,
                resume=args.resume,
                download=args.download,
                device=args.device,
                listeners=[bar],
                should_stop=raise_if_stopped,
                threads=args.threads,
            )
    finally:
        bar.close()
    summary = {
        "run_dir": str(run.path),
        "finished_tasks": run.finished_tasks,
        "tasks": run.config.tasks,
        "widths": run.spec().widths,
        "params": run.load_net().num_parameters(),
        "threads": run.threads,
    }
    if args.json:
        print_json(summary)
    else:
        print(f"run {run.path}: {run.finished_tasks}/{run.config.tasks} tasks, final widths {list(run.spec().widths)}")
    return 0


def _on_cluster(args: argparse.Namespace, config, bar):
    """Train the run as a job on the cluster of --scheduler (resuming only with --resume, as in this process)."""
    from core.cli.remote import run_folder_store, run_remotely
    from core.collective.runs import CONFIG, open_run
    from core.errors import LearngeneError
    from core.jobs.cluster import job_threads
    from core.jobs.spec import CollectiveJob, data_root

    if args.download:
        raise LearngeneError("--download fetches data into this machine's data root: run it without --scheduler first")
    folder, store = run_folder_store(args.run_dir)
    if (folder / CONFIG).is_file() and not args.resume:
        run = open_run(folder)
        if 0 < run.finished_tasks < run.config.tasks:
            raise LearngeneError(
                f"{folder} holds a run interrupted after {run.finished_tasks} of {run.config.tasks} tasks: "
                "pass --resume to continue it"
            )
    root = data_root(config.dataset, args.root)
    job = CollectiveJob(config, job_threads(args.scheduler, None, args.threads), root, args.device, folder.name)
    run_remotely(job, store, args.scheduler, [bar], [str(folder.parent), root])
    return open_run(folder)


def cmd_criterion(args: argparse.Namespace) -> int:
    """Print the layer x task criterion matrix of a run (any tau, from the stored histograms)."""
    from core.collective.runs import open_run

    log = open_run(args.run_dir).criterion()
    matrix = log.per_task(args.tau, absolute=args.absolute)
    result = {
        "run_dir": args.run_dir,
        "tau": log.tau if args.tau is None else args.tau,
        "absolute": args.absolute,
        "layers": list(log.layer_names),
        "tasks": list(range(matrix.shape[0])),
        "values": [[None if not math.isfinite(v) else float(v) for v in matrix[:, j]] for j in range(matrix.shape[1])],
    }
    if args.json:
        print_json(result)
    else:
        print("layer    " + " ".join(f"t{t:<5}" for t in result["tasks"]))
        for name, row in zip(result["layers"], result["values"]):
            print(f"{name:8} " + " ".join("  -   " if v is None else f"{v:.4f}" for v in row))
    return 0


def cmd_health(args: argparse.Namespace) -> int:
    """Print a run's health per task: training accuracy, feature rank, dead units and norms per layer."""
    from core.collective.health import health_rows
    from core.collective.runs import open_run
    from core.errors import LearngeneError

    run = open_run(args.run_dir)
    rows = health_rows(run.metrics()) if run.finished_tasks > 0 else []
    if not rows:
        raise LearngeneError(
            f"{run.path} holds no health records (no finished task, or trained before health was recorded): "
            "train the run again with this version to see them"
        )
    if args.json:
        print_json(rows)
        return 0
    layers = list(rows[0]["dead_fraction"])
    print(f"{'task':>4} {'train acc':>9} {'rank':>5} {'first loss':>10}  dead units per layer ({', '.join(layers)})")
    for row in rows:
        dead = " ".join(f"{row['dead_fraction'][name]:.2f}" for name in layers)
        verdict = "" if row["healthy"] else "  <- unhealthy"
        numbers = f"{row['task']:>4} {row['train_accuracy']:>9.2f} {row['feature_rank']:>5} {row['first_loss']:>10.2f}"
        print(f"{numbers}  {dead}{verdict}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add `collective`, `criterion` and `health` to the main parser."""
    from core.cli.remote import add_scheduler_option
    from core.collective.config import PRESETS
    from core.data.datasets import DATASETS

    p = sub.add_parser("collective", help="train the collective model on the source stream")
    p.add_argument("--dataset", choices=DATASETS, help="dataset (default: the preset's)")
    p.add_argument("--preset", choices=sorted(PRESETS), default="fast", help="settings preset (default: fast)")
    p.add_argument("--run-dir", type=path_text, required=True, help="directory for the run")
    p.add_argument("--root", type=path_text, help="data root (default: $LEARNGENE_DATA)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run from its last finished task")
    p.add_argument(
        "--download", action="store_true", help="fetch cifar100 into the data root if it is missing (needs internet)"
    )
    p.add_argument("--tasks", type=int_in(1, 1000), help="number of source tasks")
    p.add_argument("--epochs", type=int_in(1, 10000), help="epochs per task")
    p.add_argument("--seed", type=int_in(0, 2**31 - 1), help="random seed (default 0)")
    p.add_argument("--tau", type=float_in(1e-14, 10), help="criterion threshold recorded exactly")
    p.add_argument("--image-size", type=int_in(8, 256), help="image side in pixels")
    p.add_argument(
        "--head",
        choices=("per_task", "shared"),
        help="per_task: a fresh output layer for every task (default of fast and smoke); shared: one output layer "
        "relabelled 0..4 every task, as the paper (it loses plasticity over long streams, see docs/results.md)",
    )
    p.add_argument("--lr", type=float_in(1e-8, 10), help="SGD learning rate (default: the preset's)")
    p.add_argument("--momentum", type=float_in(0, 0.999), help="SGD momentum (default: the preset's)")
    p.add_argument(
        "--precise-bn",
        choices=("on", "off"),
        help="re-estimate BatchNorm statistics on each task's images after it (default: the preset's; on for fast "
        "and smoke)",
    )
    p.add_argument(
        "--images-per-class",
        type=int_in(1, 100_000),
        help="training images per class and task (default: the preset's; plus held-out images, at most what the "
        "dataset's classes hold)",
    )
    p.add_argument(
        "--extract-after",
        type=int_in(0, 999),
        help="the task whose checkpoint a learngene is taken from by default (default: the preset's; fast and smoke: "
        "the last task)",
    )
    p.add_argument("--device", default="cpu", type=nonempty, help="cpu, cuda, cuda:N or auto (default cpu)")
    add_threads_option(p)
    add_scheduler_option(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print a JSON summary")
    p.set_defaults(func=cmd_collective)

    p = sub.add_parser("criterion", help="print a run's layer x task criterion matrix")
    p.add_argument("--run-dir", type=path_text, required=True, help="run directory")
    p.add_argument(
        "--tau", type=float_in(1e-14, 10), help="threshold (default: the run's); any value in the histogram range"
    )
    p.add_argument("--absolute", action="store_true", help="count |g| > tau instead of g > tau")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_criterion)

    p = sub.add_parser("health", help="print a run's health per task (can the network still learn?)")
    p.add_argument("--run-dir", type=path_text, required=True, help="run directory")
    p.add_argument("--json", action="store_true", help="print JSON: one object per task, layer names as keys")
    p.set_defaults(func=cmd_health)
