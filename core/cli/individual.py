"""`learngene individual`: few-shot evaluation of the learngene individual model against scratch and baselines."""

from __future__ import annotations

import argparse

from core.cli.arguments import add_threads_option, float_in, int_in, nonempty, path_text, print_json, use_threads
from core.cli.learngene import DEFAULT_SELECTION, add_selection_arguments, selected
from core.errors import LearngeneError


def _config(args: argparse.Namespace, run):
    """The individual config: the preset (paper for a paper run, else fast) with the command's overrides."""
    from core.individual.config import individual_preset

    name = args.preset or ("paper" if run.config.preset == "paper" else "fast")
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
    )


def _learngene(args: argparse.Namespace):
    """(run, learngene, selection dict) from --learngene FILE or from a selection rule on the run."""
    from core.collective.runs import open_run
    from core.learngene.extraction import extract
    from core.learngene.gene import load

    if args.learngene is None:
        run, chosen = selected(args)
        return run, extract(run, chosen, args.task), chosen.as_dict()
    run = open_run(args.run_dir)
    learngene = load(args.learngene)
    if learngene.task >= run.finished_tasks:
        raise LearngeneError(
            f"{args.learngene} comes from task {learngene.task}, but {run.path} has {run.finished_tasks} finished "
            "tasks: "
            f"pass the run it was extracted from ({learngene.run})"
        )
    if (learngene.dataset, learngene.image_size) != (run.config.dataset, run.config.image_size):
        raise LearngeneError(
            f"{args.learngene} was extracted from {learngene.dataset} at {learngene.image_size}px but {run.path} uses "
            f"{run.config.dataset} at {run.config.image_size}px: pass the matching --run-dir"
        )
    selection = {
        "layers": list(learngene.layers),
        "label": learngene.label,
        "rule": "file",
        "parameter": args.learngene,
    }
    return run, learngene, selection


def cmd_individual(args: argparse.Namespace) -> int:
    """Evaluate the learngene individual model against scratch (and baselines, and sizes) on few-shot target tasks."""
    from core.cli.partial import FinishedResults, Interrupted
    from core.cli.progress import TargetBar
    from core.collective.runs import check_output_path
    from core.devices import resolve_device
    from core.individual.evaluation import plan_few_shot
    from core.individual.methods import ROW_FIELDS
    from core.tables import jsonable, write_csv, write_results_json

    for option, path in (("--out-json", args.out_json), ("--out-csv", args.out_csv)):
        if path:
            check_output_path(path, option)
    device = resolve_device(args.device)
    use_threads(args)
    run, learngene, selection = _learngene(args)
    plan = plan_few_shot(
        run,
        learngene,
        _config(args, run),
        way=args.way,
        shot=args.shot,
        tasks=args.tasks,
        query=args.query,
        baselines=args.baselines,
        sizes=args.sizes,
        root=args.root,
        device=device,
    )
    finished = FinishedResults(args.way, args.shot)
    bar = TargetBar(plan.trainings, enabled=not args.quiet)
    try:
        rows, points = plan.execute([finished] if args.quiet else [finished, bar])
    except KeyboardInterrupt:
        rows, points = finished.so_far()
    finally:
        bar.close()
    selection = dict(selection, task=learngene.task, in_channels=learngene.in_channels, input_size=learngene.input_size)
    setup = {
        "run_dir": str(run.path),
        "way": args.way,
        "shot": args.shot,
        "query": plan.config.query,
        "tasks": args.tasks,
        "config": plan.config.as_dict(),
    }
    result = jsonable({"selection": selection, "setup": setup, "rows": rows, "sizes": points})
    if finished.interrupted:
        result["partial"] = True
    if args.out_csv:
        write_csv(args.out_csv, rows, ROW_FIELDS)
    if args.out_json:
        write_results_json(args.out_json, result)
    if args.json:
        print_json(result)
    else:
        _print_table(result)
    if finished.interrupted:
        raise Interrupted(finished.summary(args.out_json, args.out_csv))
    return 0


def _print_table(result: dict) -> None:
    sel, setup = result["selection"], result["setup"]
    print(
        f"learngene {sel['label']} (task {sel['task']}); {setup['tasks']} target tasks, {setup['way']}-way "
        f"{setup['shot']}-shot, {setup['query']} query images per class"
    )
    print(f"{'method':28} {'layers':18} {'params':>10} {'inherited':>10} {'accuracy':>9} {'95% CI':>8} {'seconds':>8}")
    for row in result["rows"] + [dict(p, method=f"{p['method']} [{p['size']}]") for p in result["sizes"]]:
        ci = "-" if row["ci95"] is None else f"±{row['ci95']:.3f}"
        print(
            f"{row['method']:28} {row['layers']:18} {row['params']:>10,} {row['inherited_params']:>10,} "
            f"{row['mean_accuracy']:>9.3f} {ci:>8} {row['seconds']:>8.2f}"
        )


def register(sub: argparse._SubParsersAction) -> None:
    """Add `individual` to the main parser."""
    from core.individual.config import INDIVIDUAL_PRESETS

    p = sub.add_parser(
        "individual",
        help="few-shot evaluation of the learngene individual model against scratch and baselines",
        description=(
            "Build individual models around the learngene and evaluate them on few-shot tasks from the run's novel "
            f"classes, against the same architecture from scratch; {DEFAULT_SELECTION} (or pass --learngene FILE)."
        ),
    )
    add_selection_arguments(p)
    p.add_argument(
        "--learngene", type=path_text, help="use this learngene file instead of selecting layers from the run"
    )
    p.add_argument("--root", type=path_text, help="data root (default: $LEARNGENE_DATA)")
    p.add_argument(
        "--preset",
        choices=sorted(INDIVIDUAL_PRESETS),
        help="individual-model settings (default: paper for a paper run, else fast)",
    )
    p.add_argument("--way", type=int_in(2, 1000), default=5, help="classes per target task (default 5)")
    p.add_argument("--shot", type=int_in(1, 10_000), default=10, help="training images per class (default 10)")
    p.add_argument(
        "--query",
        type=int_in(1, 100_000),
        help="test images per class (default: the preset's, at most what the classes hold)",
    )
    p.add_argument("--tasks", type=int_in(1, 10_000), default=5, help="number of target tasks (default 5)")
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
        "--baselines", action="store_true", help="add window ablations, collective fine-tuning and nearest centroids"
    )
    p.add_argument(
        "--sizes", action="store_true", help="add a sweep over model sizes (accuracy against parameter count)"
    )
    p.add_argument("--seed", type=int_in(0, 2**31 - 1), help="seed of target tasks and models (default 0)")
    p.add_argument("--device", default="cpu", type=nonempty, help="cpu, cuda, cuda:N or auto (default cpu)")
    add_threads_option(p)
    p.add_argument("--out-csv", type=path_text, help="also write the results table as CSV")
    p.add_argument("--out-json", type=path_text, help="also write the JSON result to a file")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.add_argument("--json", action="store_true", help="print only the final JSON on stdout")
    p.set_defaults(func=cmd_individual)
