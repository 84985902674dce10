"""The `learngene extract` and `learngene individual` subcommands."""
from __future__ import annotations

import argparse
import json
import sys

from core.errors import LearngeneError

DEFAULT_SELECTION = "without --layers, --threshold or --top-k the most stable window of 3 conv layers is used for a paper-preset run, of 2 otherwise"


def _selection_arguments(p: argparse.ArgumentParser) -> None:
    from core.cli import float_in, int_in, nonempty, path_text
    from core.selection import AGGREGATIONS

    p.add_argument("--run-dir", type=path_text, required=True, help="a run directory written by `learngene collective`")
    rule = p.add_mutually_exclusive_group()
    rule.add_argument("--layers", type=nonempty, help="explicit block, e.g. conv4-conv6 or conv4,conv5,conv6")
    rule.add_argument("--threshold", type=float_in(0.0, 1.0), help="the conv layers whose score is at most this")
    rule.add_argument("--top-k", type=int_in(1, 1000), help="the most stable window of K contiguous conv layers, conv1 excluded (default: 3 for a paper-preset run, else 2)")
    p.add_argument("--tau", type=float_in(1e-14, 10), help="criterion threshold for the scores (default: the run's)")
    p.add_argument("--absolute", action="store_true", help="score |g| > tau instead of g > tau")
    p.add_argument("--aggregation", choices=AGGREGATIONS, default="mean", help="how a layer's per-task values become its score (default mean)")
    p.add_argument("--task", type=int_in(0, 1_000_000), help="checkpoint to take the layers from (default: the run's extract_after_task)")


def _selection(args: argparse.Namespace):
    from core.learngene import select_for_run
    from core.runs import open_run

    run = open_run(args.run_dir)
    selection = select_for_run(
        run, layers=args.layers, threshold=args.threshold, top_k=args.top_k, tau=args.tau, absolute=args.absolute, aggregation=args.aggregation
    )
    return run, selection


def cmd_extract(args: argparse.Namespace) -> int:
    """Write the selected layers of a run as a learngene file."""
    from core.learngene import extract, save

    run, selection = _selection(args)
    learngene = extract(run, selection, args.task)
    path = save(learngene, args.out)
    summary = dict(learngene.describe(), file=str(path))
    if args.json:
        sys.stdout.write(json.dumps(summary, indent=2, allow_nan=False) + "\n")
    else:
        print(f"wrote {path}: {learngene.label} from task {learngene.task} of {run.path}, {learngene.num_parameters():,} parameters, input {learngene.in_channels} channels at {learngene.input_size}px")
    return 0


def _config(args: argparse.Namespace, run, imageset):
    from core.fewshot import INDIVIDUAL_PRESETS, fitting_query, individual_preset

    name = args.preset or ("paper" if run.config.preset == "paper" else "fast")
    query = args.query if args.query is not None else fitting_query(INDIVIDUAL_PRESETS[name].query, imageset, args.shot)
    head = None
    if args.head_hidden is not None:
        try:
            head = tuple(int(v) for v in args.head_hidden.split(",") if v.strip())
        except ValueError:
            raise LearngeneError(f"--head-hidden {args.head_hidden!r} is not a list of widths: write e.g. 64 or 1024,1024") from None
    return individual_preset(
        name,
        epochs=args.epochs,
        lr=args.lr,
        batch_size=args.batch_size,
        query=query,
        freeze=True if args.freeze else None,
        ewc_lambda=args.ewc_lambda,
        width_multiplier=args.width_multiplier,
        front_depth=args.front_depth,
        head_hidden=head,
        seed=args.seed,
    )


def _planned(run, learngene, config, baselines: bool, sizes: bool) -> int:
    """How many (method, target task) pairs the command will run, for the progress bar."""
    from core.selection import windows
    from core.sweep import default_sizes

    methods = 2
    if baselines:
        methods += len(windows(run.spec(learngene.task).layer_names(), len(learngene.layers))) - 1 + 2
    if sizes:  # the default size reuses the learngene and scratch rows, the collective its baseline row
        methods += 2 * (len(default_sizes(learngene, config)) - 1) + (0 if baselines else 1)
    return methods


def _learngene(args: argparse.Namespace):
    """(run, learngene, selection dict) from --learngene FILE or from a selection rule on the run."""
    from core.learngene import extract, load
    from core.runs import open_run

    if args.learngene is None:
        run, chosen = _selection(args)
        return run, extract(run, chosen, args.task), chosen.as_dict()
    run = open_run(args.run_dir)
    learngene = load(args.learngene)
    if learngene.task >= run.finished_tasks:
        raise LearngeneError(
            f"{args.learngene} comes from task {learngene.task}, but {run.path} has {run.finished_tasks} finished tasks: "
            f"pass the run it was extracted from ({learngene.run})"
        )
    if (learngene.dataset, learngene.image_size) != (run.config.dataset, run.config.image_size):
        raise LearngeneError(
            f"{args.learngene} was extracted from {learngene.dataset} at {learngene.image_size}px but {run.path} uses "
            f"{run.config.dataset} at {run.config.image_size}px: pass the matching --run-dir"
        )
    return run, learngene, {"layers": list(learngene.layers), "label": learngene.label, "rule": "file", "parameter": args.learngene}


def cmd_individual(args: argparse.Namespace) -> int:
    """Evaluate the learngene individual model against scratch (and baselines, and sizes) on few-shot target tasks."""
    from core.cli import use_threads
    from core.collective import resolve_device
    from core.fewshot import evaluate, jsonable, make_targets, run_imageset, write_csv, write_results_json
    from core.progress import TargetBar
    from core.sweep import sweep

    device = resolve_device(args.device)
    use_threads(args)
    run, learngene, selection = _learngene(args)
    imageset = run_imageset(run, args.root)
    config = _config(args, run, imageset)
    targets = make_targets(run, imageset, way=args.way, shot=args.shot, query=config.query, tasks=args.tasks, seed=config.seed, device=device)
    bar = TargetBar(_planned(run, learngene, config, args.baselines, args.sizes) * args.tasks, enabled=not args.quiet)
    listeners = [] if args.quiet else [bar]
    try:
        rows = evaluate(run, learngene, config, targets=targets, baselines=args.baselines, device=device, listeners=listeners)
        points = sweep(run, learngene, config, targets, known=rows, device=device, listeners=listeners) if args.sizes else []
    finally:
        bar.close()
    selection = dict(selection, task=learngene.task, in_channels=learngene.in_channels, input_size=learngene.input_size)
    setup = {"run_dir": str(run.path), "way": args.way, "shot": args.shot, "query": config.query, "tasks": args.tasks, "config": config.as_dict()}
    result = jsonable({"selection": selection, "setup": setup, "rows": rows, "sizes": points})
    if args.out_csv:
        write_csv(rows, args.out_csv)
    if args.out_json:
        write_results_json(result, args.out_json)
    if args.json:
        sys.stdout.write(json.dumps(result, indent=2, allow_nan=False) + "\n")
    else:
        _print_table(result)
    return 0


def _print_table(result: dict) -> None:
    sel, setup = result["selection"], result["setup"]
    print(f"learngene {sel['label']} (task {sel['task']}); {setup['tasks']} target tasks, {setup['way']}-way {setup['shot']}-shot, {setup['query']} query images per class")
    print(f"{'method':28} {'layers':18} {'params':>10} {'inherited':>10} {'accuracy':>9} {'95% CI':>8} {'seconds':>8}")
    for row in result["rows"] + [dict(p, method=f"{p['method']} [{p['size']}]") for p in result["sizes"]]:
        ci = "-" if row["ci95"] is None else f"±{row['ci95']:.3f}"
        print(f"{row['method']:28} {row['layers']:18} {row['params']:>10,} {row['inherited_params']:>10,} {row['mean_accuracy']:>9.3f} {ci:>8} {row['seconds']:>8.2f}")


def register(sub: argparse._SubParsersAction) -> None:
    """Add `extract` and `individual` to the main parser."""
    from core.cli import add_threads_option, float_in, int_in, nonempty, path_text
    from core.fewshot import INDIVIDUAL_PRESETS

    p = sub.add_parser("extract", help="write a run's learngene layers to a file", description=f"Select a block of conv layers and write it as a learngene file; {DEFAULT_SELECTION}.")
    _selection_arguments(p)
    p.add_argument("--out", type=path_text, required=True, help="learngene file to write (.safetensors)")
    p.add_argument("--json", action="store_true", help="print a JSON summary")
    p.set_defaults(func=cmd_extract)

    p = sub.add_parser(
        "individual",
        help="few-shot evaluation of the learngene individual model against scratch and baselines",
        description=(
            "Build individual models around the learngene and evaluate them on few-shot tasks from the run's novel classes, "
            f"against the same architecture from scratch; {DEFAULT_SELECTION} (or pass --learngene FILE)."
        ),
    )
    _selection_arguments(p)
    p.add_argument("--learngene", type=path_text, help="use this learngene file instead of selecting layers from the run")
    p.add_argument("--root", type=path_text, help="data root (default: $LEARNGENE_DATA)")
    p.add_argument("--preset", choices=sorted(INDIVIDUAL_PRESETS), help="individual-model settings (default: paper for a paper run, else fast)")
    p.add_argument("--way", type=int_in(2, 1000), default=5, help="classes per target task (default 5)")
    p.add_argument("--shot", type=int_in(1, 10_000), default=10, help="training images per class (default 10)")
    p.add_argument("--query", type=int_in(1, 100_000), help="test images per class (default: the preset's, at most what the classes hold)")
    p.add_argument("--tasks", type=int_in(1, 10_000), default=5, help="number of target tasks (default 5)")
    p.add_argument("--epochs", type=int_in(1, 10_000), help="training epochs per target task")
    p.add_argument("--lr", type=float_in(1e-8, 10), help="learning rate")
    p.add_argument("--batch-size", type=int_in(1, 4096), help="batch size")
    p.add_argument("--freeze", action="store_true", help="freeze the inherited layers (weights and BatchNorm statistics)")
    p.add_argument("--ewc-lambda", type=float_in(0, 1e12), help="EWC anchored at the inherited weights (0 = off)")
    p.add_argument("--width-multiplier", type=float_in(0.01, 64), help="scale the new front's widths")
    p.add_argument("--front-depth", type=int_in(1, 64), help="conv layers in the new front (default: the pools needed before the block, at least 2)")
    p.add_argument("--head-hidden", type=nonempty, help="hidden widths of the new head, e.g. 64 or 1024,1024")
    p.add_argument("--baselines", action="store_true", help="add window ablations, collective fine-tuning and nearest centroids")
    p.add_argument("--sizes", action="store_true", help="add a sweep over model sizes (accuracy against parameter count)")
    p.add_argument("--seed", type=int_in(0, 2**31 - 1), help="seed of target tasks and models (default 0)")
    p.add_argument("--device", default="cpu", type=nonempty, help="cpu, cuda, cuda:N or auto (default cpu)")
    add_threads_option(p)
    p.add_argument("--out-csv", type=path_text, help="also write the results table as CSV")
    p.add_argument("--out-json", type=path_text, help="also write the JSON result to a file")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.add_argument("--json", action="store_true", help="print only the final JSON on stdout")
    p.set_defaults(func=cmd_individual)
