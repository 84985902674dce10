"""`learngene individual`: few-shot evaluation of the learngene individual model against scratch and baselines."""

from __future__ import annotations

import argparse
from pathlib import Path

from core.cli.arguments import add_threads_option, float_in, int_in, nonempty, path_text, print_json, thread_count
from core.cli.learngene import DEFAULT_SELECTION, add_selection_arguments, selection_rule
from core.cli.stopping import raise_if_stopped
from core.errors import LearngeneError


def _config(args: argparse.Namespace, run):
    """The individual config: the preset (paper for a paper run, else fast) with the command's overrides."""
    from core.individual.config import individual_preset

    name = args.preset or ("paper" if run is not None and run.config.preset == "paper" else "fast")
    head = None
    if args.head_hidden is not None:
        try:
            head = tuple(int(v) for v in args.head_hidden.split(",") if v.strip())
        except ValueError:
            raise LearngeneError(
                f"--head-hidden {args.head_hidden!r} is not a list of widths: write e.g. 64 or 1024,1024"
            ) from None
    return individual_preset(
        name,
        epochs=args.epochs,
        lr=args.lr,
        batch_size=args.batch_size,
        freeze=True if args.freeze else None,
        ewc_lambda=args.ewc_lambda,
        width_multiplier=args.width_multiplier,
        front_depth=args.front_depth,
        head_hidden=head,
        seed=args.seed,
        inherited_lr=args.inherited_lr,
        recalibrate_bn=False if args.keep_bn else None,
        selection_multiplier=args.selection_multiplier,
        head_init=args.head_init,
        head=args.head,
        head_scale=args.head_scale,
        inherited_bn=args.inherited_bn,
    )


def _target_source(args: argparse.Namespace):
    """Where the target tasks come from, checked against the options given with it."""
    from core.individual.targets import EPISODES, TargetSource

    if args.target_dataset is None:
        extra = next((o for o, v in (("--target-root", args.target_root), ("--invert", args.invert)) if v), None)
        if extra is not None:
            raise LearngeneError(f"{extra} applies to target tasks from elsewhere: also pass --target-dataset NAME")
        return TargetSource()
    if args.target_dataset in ("imagefolder", EPISODES) and args.target_root is None:
        raise LearngeneError(f"--target-dataset {args.target_dataset} needs --target-root PATH, the folder it reads")
    return TargetSource(args.target_dataset, args.target_root, args.invert or "auto")


def individual_job(args: argparse.Namespace):
    """The few-shot job the options describe (the run is opened to choose the preset and name its content)."""
    from core.collective.runs import open_run
    from core.jobs.spec import FewShotJob, run_identity

    if args.learngene is None and args.run_dir is None:
        raise LearngeneError("no learngene to evaluate: pass --run-dir DIR (a run) or --learngene FILE")
    run = None if args.run_dir is None else open_run(args.run_dir)
    return FewShotJob(
        run_dir=args.run_dir,
        run_id=None if run is None else run_identity(run.path),
        config=_config(args, run),
        selection=selection_rule(args),
        target=_target_source(args),
        way=args.way,
        shot=args.shot,
        query=args.query,
        tasks=args.tasks,
        baselines=args.baselines,
        sizes=args.sizes,
        windows=args.windows,
        prefixes=args.prefixes,
        task=args.task,
        learngene_file=args.learngene,
        learngene_sha256=None if args.learngene is None else _learngene_digest(args.learngene),
        root=args.root,
        device=args.device,
        threads=thread_count(args),
    )


def _learngene_digest(path: str) -> str:
    from core.jobs.spec import file_sha256

    try:
        return file_sha256(path)
    except OSError as exc:
        raise LearngeneError(f"cannot read --learngene {path} ({exc.strerror}): check the path") from None


def cmd_individual(args: argparse.Namespace) -> int:
    """Evaluate the learngene individual model against scratch (and baselines, and sizes) on few-shot target tasks."""
    from core.cli.partial import FinishedResults, Interrupted
    from core.cli.progress import NotePrinter, TargetBar
    from core.devices import resolve_device
    from core.jobs.fewshot import prepare_fewshot
    from core.outputs import check_outputs
    from core.threads import torch_threads

    check_outputs([("--out-json", args.out_json), ("--out-csv", args.out_csv)], "--json" if args.json else None)
    resolve_device(args.device)
    job = individual_job(args)
    if args.scheduler:
        return _on_cluster(args, job)
    with torch_threads(job.threads):
        prepared = prepare_fewshot(job, [NotePrinter("individual", quiet=args.quiet)])
        finished = FinishedResults(prepared.targets.way, prepared.targets.shot)
        bar = TargetBar(prepared.trainings, enabled=not args.quiet)
        listeners = [finished] if args.quiet else [finished, bar]
        studies = {}
        try:
            rows, points, studies = prepared.execute(listeners, raise_if_stopped)
        except KeyboardInterrupt:
            rows, points = finished.so_far()
        finally:
            bar.close()
    result = prepared.result(rows, points, studies)
    if finished.interrupted:
        result["partial"] = True
    _deliver(args, result)
    if finished.interrupted:
        raise Interrupted(finished.summary(args.out_json, args.out_csv))
    return 0


def _deliver(args: argparse.Namespace, result: dict) -> None:
    """Write the result where the options say, and print it."""
    from core.individual.result_row import ROW_FIELDS
    from core.outputs import STDOUT, write_output
    from core.tables import csv_text, results_json_text

    if args.out_csv:
        threads = result["setup"]["threads"]
        write_output(args.out_csv, csv_text([dict(row, threads=threads) for row in result["rows"]], ROW_FIELDS))
    if args.out_json:
        write_output(args.out_json, results_json_text(result))
    if args.json:
        print_json(result)
    elif STDOUT not in (args.out_json, args.out_csv):
        _print_table(result)


def _on_cluster(args: argparse.Namespace, job) -> int:
    """Run the evaluation as a job on the cluster of --scheduler and deliver its stored result."""
    import dataclasses
    import json

    from core.cli.progress import NotePrinter, TargetBar
    from core.cli.remote import run_folder_store, run_remotely
    from core.jobs.cluster import job_threads

    if args.run_dir is None:
        raise LearngeneError(
            "--scheduler needs --run-dir: the workers read the run (a learngene file alone is not sent)"
        )
    folder, store = run_folder_store(args.run_dir)
    job = dataclasses.replace(job, threads=job_threads(args.scheduler, None, args.threads))
    bar = TargetBar(0, enabled=not args.quiet)
    listeners = [NotePrinter("individual", quiet=args.quiet), bar, _total_setter(bar)]
    try:
        shared = [str(folder), job.root, job.target.root, job.learngene_file]
        outcome = run_remotely(job, store, args.scheduler, listeners, shared)
    finally:
        bar.close()
    _deliver(args, json.loads(Path(outcome.path).read_text()))
    return 0


def _total_setter(bar):
    """A listener that sizes the progress bar once the job's plan is known."""
    from core.events import PlanReady

    def listen(event: object) -> None:
        if isinstance(event, PlanReady):
            bar.bar.total = event.trainings
            bar.bar.refresh()

    return listen


def _print_table(result: dict) -> None:
    from core.individual.twins import TWIN_PHRASE

    sel, setup, target = result["selection"], result["setup"], result["target"]
    shot = "varying-shot" if setup["shot"] is None else f"{setup['shot']}-shot"
    query = "varying" if setup["query"] is None else setup["query"]
    where = {
        "novel": f"novel classes of {target['dataset']}",
        "dataset": f"all {target['classes']} classes of {target['dataset']} in {target['path']}",
        "episodes": f"episodes in {target['path']}",
    }[target["kind"]]
    print(
        f"learngene {sel['label']} (task {sel['task']}); {setup['tasks']} target tasks from {where}, "
        f"{setup['way']}-way {shot}, {query} query images per class"
    )
    points = [dict(p, method=f"{p['method']} [{p['size']}]") for p in result["sizes"]]
    width = max([30] + [len(row["method"]) for row in points])
    print(
        f"{'method':{width}} {'layers':14} {'params':>9} {'inherited':>9} {'accuracy':>8} {'95% CI':>7} "
        f"{'vs scratch':>16}  per-task accuracy"
    )
    for row in result["rows"] + points:
        if points and row is points[0] and "twin" in row:  # results of the older pairing have no twins
            print(f"size sweep: {TWIN_PHRASE} (its twin, the row scratch (<strategy>)); vs scratch is paired with it")
        ci = "-" if row["ci95"] is None else f"±{row['ci95']:.3f}"
        paired = row.get("vs_twin", row.get("vs_scratch"))
        versus = (
            ""
            if paired is None
            else f"{paired['mean']:+.3f}" + ("" if paired["ci95"] is None else f" ±{paired['ci95']:.3f}")
        )
        per_task = " ".join(f"{a:.2f}" for a in row["task_accuracies"])
        print(
            f"{row['method']:{width}} {row['layers']:14} {row['params']:>9,} {row['inherited_params']:>9,} "
            f"{row['mean_accuracy']:>8.3f} {ci:>7} {versus:>16}  {per_task}"
        )
    heads = {
        "windows": "every window of {k} layers, inherited from task {task} (score: lower = more stable)",
        "prefixes": "every front prefix, inherited from task {task} (score: lower = more stable)",
    }
    for name, head in heads.items():
        study = result.get(name)
        if not study:
            continue
        print("\n" + head.format(**study))
        for row in study["rows"]:
            scores = ", ".join(f"{c} {v:.4f}" for c, v in row["scores"].items())
            print(f"  {row['layers']:14} accuracy {row['mean_accuracy']:.3f}   score {scores}")
        for criterion, c in study["correlation"].items():
            rho = "undefined" if c["spearman"] is None else f"{c['spearman']:+.2f} (p {c['p_value']:.2f})"
            print(f"  Spearman rank correlation of the {criterion} criterion's score with accuracy: {rho}")


def register(sub: argparse._SubParsersAction) -> None:
    """Add `individual` to the main parser."""
    from core.cli.remote import add_scheduler_option
    from core.data.polarity import INVERT_MODES
    from core.individual.config import INDIVIDUAL_PRESETS
    from core.individual.targets import TARGET_DATASETS

    p = sub.add_parser(
        "individual",
        help="few-shot evaluation of the learngene individual model against scratch and baselines",
        description=(
            "Build individual models around the learngene and evaluate them on few-shot tasks from the run's novel "
            "classes (or from another dataset, or from a folder of episodes), against the same architecture from "
            f"scratch; {DEFAULT_SELECTION} (or pass --learngene FILE)."
        ),
    )
    add_selection_arguments(p, run_dir_required=False)
    p.add_argument(
        "--learngene", type=path_text, help="use this learngene file instead of selecting layers from the run"
    )
    p.add_argument("--root", type=path_text, help="data root of the run's dataset (default: $LEARNGENE_DATA)")
    p.add_argument(
        "--target-dataset",
        choices=TARGET_DATASETS,
        help="draw target tasks from every class of this dataset, or from fixed episodes (PATH/<episode>/support/"
        "<class>/ and PATH/<episode>/query/<class>/); default: the run's novel classes",
    )
    p.add_argument(
        "--target-root",
        type=path_text,
        help="where the target dataset is (required for imagefolder and episodes; else default $LEARNGENE_DATA)",
    )
    p.add_argument(
        "--invert",
        choices=INVERT_MODES,
        help="ink polarity of the target images: auto (default) inverts them when their background disagrees with "
        "the training images' (and says so), yes always, no never",
    )
    p.add_argument(
        "--preset",
        choices=sorted(INDIVIDUAL_PRESETS),
        help="individual-model settings (default: paper for a paper run, else fast)",
    )
    p.add_argument("--way", type=int_in(2, 1000), help="classes per target task (default 5; episodes fix their own)")
    p.add_argument(
        "--shot", type=int_in(1, 10_000), help="training images per class (default 10; episodes fix their own)"
    )
    p.add_argument(
        "--query",
        type=int_in(1, 100_000),
        help="test images per class (default: the preset's, at most what the classes hold)",
    )
    p.add_argument(
        "--tasks",
        type=int_in(1, 10_000),
        help="number of target tasks (default 5; for episodes: the first M, else all)",
    )
    p.add_argument("--epochs", type=int_in(1, 10_000), help="training epochs per target task")
    p.add_argument("--lr", type=float_in(1e-8, 10), help="learning rate")
    p.add_argument("--batch-size", type=int_in(1, 4096), help="batch size")
    p.add_argument(
        "--freeze", action="store_true", help="freeze the inherited layers (weights and BatchNorm statistics)"
    )
    p.add_argument("--ewc-lambda", type=float_in(0, 1e12), help="EWC anchored at the inherited weights (0 = off)")
    p.add_argument("--width-multiplier", type=float_in(0.01, 64), help="scale the new front's widths")
    p.add_argument(
        "--front-depth",
        type=int_in(1, 64),
        help="conv layers in the new front (default: the pools needed before the block, at least 2)",
    )
    p.add_argument("--head-hidden", type=nonempty, help="hidden widths of the new head, e.g. 64 or 1024,1024")
    p.add_argument(
        "--inherited-lr",
        type=float_in(1e-6, 10),
        help="learning-rate factor of the inherited layers when fine-tuning (default 1; e.g. 0.1 keeps them closer)",
    )
    p.add_argument(
        "--keep-bn",
        action="store_true",
        help="keep the BatchNorm statistics training ends with (default: re-estimate them on the support set)",
    )
    p.add_argument(
        "--head-init",
        choices=("auto", "random", "prototypes"),
        help="start the new output layer at random, or as the support set's class prototypes (Proto-MAML's init); "
        "auto: prototypes where every layer before the head is inherited",
    )
    p.add_argument(
        "--head",
        choices=("auto", "linear", "cosine"),
        help="the new output layer: linear, or cosine (Baseline++: scaled cosine to each class's weight vector); "
        "auto: cosine, but linear for the collective's architecture from random weights",
    )
    p.add_argument("--head-scale", type=float_in(1e-3, 1000), help="the cosine head's scale (logit = scale x cosine)")
    p.add_argument(
        "--inherited-bn",
        choices=("adapt", "keep"),
        help="inherited BatchNorm layers: adapt (train and re-estimate on the support set) or keep the collective's",
    )
    p.add_argument(
        "--selection-multiplier",
        type=float_in(0.01, 1),
        help="width multiplier of the weight-selection baseline (default 0.5 of the collective model)",
    )
    p.add_argument(
        "--baselines",
        action="store_true",
        help="add front inheritance, weight selection, the other windows, collective fine-tuning and nearest centroids",
    )
    p.add_argument(
        "--sizes",
        action="store_true",
        help="add a sweep over model sizes: every strategy at 1/8 to 1 of the collective's widths",
    )
    p.add_argument(
        "--windows",
        action="store_true",
        help="also inherit every window of the learngene's length and report the rank correlation of accuracy with "
        "each criterion's layer score (paper, scale-free relative, open-world transfer)",
    )
    p.add_argument(
        "--prefixes",
        action="store_true",
        help="also inherit every front prefix (conv1, conv1-conv2, ...) and report the same rank correlations",
    )
    p.add_argument("--seed", type=int_in(0, 2**31 - 1), help="seed of target tasks and models (default 0)")
    p.add_argument("--device", default="cpu", type=nonempty, help="cpu, cuda, cuda:N or auto (default cpu)")
    add_threads_option(p)
    add_scheduler_option(p)
    p.add_argument(
        "--out-csv",
        type=path_text,
        help="also write the results table as CSV (- for standard output, instead of the table)",
    )
    p.add_argument(
        "--out-json",
        type=path_text,
        help="also write the JSON result to a file (- for standard output, instead of the table)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.add_argument("--json", action="store_true", help="print only the final JSON on stdout")
    p.set_defaults(func=cmd_individual)
