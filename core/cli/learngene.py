"""`learngene extract`: select a block of conv layers from a run and write it as a learngene file."""

from __future__ import annotations

import argparse
import sys

from core.cli.arguments import float_in, int_in, nonempty, path_text, print_json
from core.names import shown

DEFAULT_SELECTION = (
    "without --layers, --threshold or --top-k the most stable window of 3 conv layers is used for a paper-preset "
    "run, of 2 otherwise"
)


def add_selection_arguments(p: argparse.ArgumentParser, *, run_dir_required: bool = True) -> None:
    """The options that choose the learngene layers of a run (shared by `extract` and `individual`)."""
    from core.learngene.selection import AGGREGATIONS, CRITERIA

    p.add_argument(
        "--run-dir",
        type=path_text,
        required=run_dir_required,
        help="a run directory written by `learngene collective`"
        + ("" if run_dir_required else " (optional with --learngene FILE: then only learngene and scratch run)"),
    )
    rule = p.add_mutually_exclusive_group()
    rule.add_argument("--layers", type=nonempty, help="explicit block, e.g. conv4-conv6 or conv4,conv5,conv6")
    rule.add_argument("--threshold", type=float_in(0.0, 1.0), help="the conv layers whose score is at most this")
    rule.add_argument(
        "--top-k",
        type=int_in(1, 1000),
        help="the most stable window of K contiguous conv layers (default: 3 for a paper-preset run, else 2)",
    )
    p.add_argument("--tau", type=float_in(1e-14, 10), help="criterion threshold for the scores (default: the run's)")
    p.add_argument("--absolute", action="store_true", help="score |g| > tau instead of g > tau")
    p.add_argument(
        "--criterion",
        choices=CRITERIA,
        default="paper",
        help="paper: the share of gradient entries above tau; relative: above each layer's gradient RMS (scale-free); "
        "transfer: the layer's nearest-centroid error on open-world classes the source stream never uses",
    )
    p.add_argument(
        "--aggregation", choices=AGGREGATIONS, default="mean", help="how a layer's per-task values become its score"
    )
    p.add_argument(
        "--task",
        type=int_in(0, 1_000_000),
        help="checkpoint to take the layers from (default: the run's extract_after_task)",
    )


def selection_rule(args: argparse.Namespace):
    """The selection options as a rule (core.jobs.spec.SelectionRule)."""
    from core.jobs.spec import SelectionRule

    return SelectionRule(
        layers=args.layers,
        threshold=args.threshold,
        top_k=args.top_k,
        tau=args.tau,
        absolute=args.absolute,
        aggregation=args.aggregation,
        criterion=args.criterion,
    )


def selected(args: argparse.Namespace):
    """(run, selection) from the selection options."""
    from core.collective.runs import open_run

    run = open_run(args.run_dir)
    return run, selection_rule(args).apply(run)


def cmd_extract(args: argparse.Namespace) -> int:
    """Write the selected layers of a run as a learngene file."""
    from core.learngene.extraction import extract
    from core.learngene.gene import encoded
    from core.outputs import STDOUT, check_outputs, where, write_output

    check_outputs([("--out", args.out)], "--json" if args.json else None)
    run, selection = selected(args)
    learngene = extract(run, selection, args.task)
    write_output(args.out, encoded(learngene))
    path = where(args.out)
    if args.json:
        print_json(dict(learngene.describe(), file=path))
    else:
        line = (
            f"wrote {path}: {learngene.label} from task {learngene.task} of {shown(run.path)}, "
            f"{learngene.num_parameters():,} parameters, input {learngene.in_channels} channels at "
            f"{learngene.input_size}px\n"
        )
        (sys.stderr if args.out == STDOUT else sys.stdout).write(line)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add `extract` to the main parser."""
    p = sub.add_parser(
        "extract",
        help="write a run's learngene layers to a file",
        description=f"Select a block of conv layers and write it as a learngene file; {DEFAULT_SELECTION}.",
    )
    add_selection_arguments(p)
    p.add_argument(
        "--out", type=path_text, required=True, help="learngene file to write (.safetensors; - for standard output)"
    )
    p.add_argument("--json", action="store_true", help="print a JSON summary")
    p.set_defaults(func=cmd_extract)
