"""The `learngene` command line: datasets, collective, criterion, extract, individual."""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
from typing import Callable, Sequence

from core.errors import LearngeneError


class OneLineParser(argparse.ArgumentParser):
    """argparse whose errors are one line with a hint, exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")
        sys.exit(2)


def int_in(low: int, high: int) -> Callable[[str], int]:
    """argparse type: an integer in [low, high]."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number (expected {low}..{high})") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is out of range (expected {low}..{high})")
        return value

    parse.bounds = (low, high)  # type: ignore[attr-defined]
    return parse


def float_in(low: float, high: float) -> Callable[[str], float]:
    """argparse type: a finite float in [low, high]."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number (expected {low:g}..{high:g})") from None
        if not math.isfinite(value) or not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text} is out of range (expected {low:g}..{high:g})")
        return value

    parse.bounds = (low, high)  # type: ignore[attr-defined]
    return parse


def nonempty(text: str) -> str:
    """argparse type: a non-empty string."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty value is not allowed")
    return text


def path_text(text: str) -> str:
    """argparse type: a non-empty path that the file system can hold (no NUL, names up to 255 bytes, 4096 in all)."""
    nonempty(text)
    encoded = os.fsencode(text)
    if b"\0" in encoded:
        raise argparse.ArgumentTypeError("a path cannot contain a NUL character")
    if len(encoded) > 4096 or any(len(part) > 255 for part in encoded.split(b"/")):
        raise argparse.ArgumentTypeError(f"path of {len(text):,} characters is too long (at most 255 bytes per name, 4096 in all)")
    return text


def add_threads_option(p: argparse.ArgumentParser) -> None:
    """--threads, shared by the commands that train."""
    p.add_argument(
        "--threads", type=int_in(1, 1024),
        help="CPU threads for torch (default: torch's; 1 is faster when other programs keep 2 cores busy; "
        "another count can change results in the last bits, so resume with the same one)",
    )


def use_threads(args: argparse.Namespace) -> None:
    """Apply --threads, if given."""
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)


def _print_json(obj: object) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, allow_nan=False) + "\n")


def cmd_datasets(args: argparse.Namespace) -> int:
    """List every dataset, its size and whether it is available here."""
    from core.datasets import describe_all

    infos = describe_all(args.root)
    if args.json:
        _print_json([i.as_dict() for i in infos])
        return 0
    for i in infos:
        size = f"{i.classes} classes, {i.images} images" if i.available else "not available"
        print(f"{i.name:12} {size}, {i.resolution[0]}x{i.resolution[1]}x{i.channels}: {i.description}")
        if not i.available:
            print(f"{'':12} why: {i.reason}; how: {i.how_to_get}")
    return 0


def cmd_collective(args: argparse.Namespace) -> int:
    """Train the collective model over the source stream, committing every task to the run directory."""
    from core.collective import train_collective
    from core.config import preset
    from core.progress import CollectiveBar

    config = preset(args.preset, dataset=args.dataset, tasks=args.tasks, epochs=args.epochs, seed=args.seed, tau=args.tau, image_size=args.image_size)
    use_threads(args)
    bar = CollectiveBar(enabled=not args.quiet)
    try:
        run = train_collective(config, args.run_dir, root=args.root, resume=args.resume, download=args.download, device=args.device, listeners=[bar])
    finally:
        bar.close()
    summary = {"run_dir": str(run.path), "finished_tasks": run.finished_tasks, "tasks": run.config.tasks, "widths": run.spec().widths, "params": run.load_net().num_parameters()}
    if args.json:
        _print_json(summary)
    else:
        print(f"run {run.path}: {run.finished_tasks}/{run.config.tasks} tasks, final widths {list(run.spec().widths)}")
    return 0


def cmd_criterion(args: argparse.Namespace) -> int:
    """Print the layer x task criterion matrix of a run (any tau, from the stored histograms)."""
    from core.runs import open_run

    log = open_run(args.run_dir).criterion()
    matrix = log.per_task(args.tau, absolute=args.absolute)
    result = {
        "run_dir": args.run_dir,
        "tau": log.tau if args.tau is None else args.tau,
        "absolute": args.absolute,
        "layers": list(log.layer_names),
        "tasks": list(range(matrix.shape[0])),
        "values": [[None if not math.isfinite(v) else float(v) for v in matrix[:, l]] for l in range(matrix.shape[1])],
    }
    if args.json:
        _print_json(result)
    else:
        print("layer    " + " ".join(f"t{t:<5}" for t in result["tasks"]))
        for name, row in zip(result["layers"], result["values"]):
            print(f"{name:8} " + " ".join("  -   " if v is None else f"{v:.4f}" for v in row))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    from core.config import PRESETS
    from core.datasets import DATASETS

    parser = OneLineParser(prog="learngene", description="Learngene: collective model, gradient criterion, learngene, few-shot individual models.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)

    p = sub.add_parser("datasets", help="list datasets and whether they are available here")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--root", type=path_text, help="data root (default: $LEARNGENE_DATA)")
    p.set_defaults(func=cmd_datasets)

    p = sub.add_parser("collective", help="train the collective model on the source stream")
    p.add_argument("--dataset", choices=DATASETS, help="dataset (default: the preset's)")
    p.add_argument("--preset", choices=sorted(PRESETS), default="fast", help="settings preset (default: fast)")
    p.add_argument("--run-dir", type=path_text, required=True, help="directory for the run")
    p.add_argument("--root", type=path_text, help="data root (default: $LEARNGENE_DATA)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run from its last finished task")
    p.add_argument("--download", action="store_true", help="fetch cifar100 into the data root if it is missing (needs internet)")
    p.add_argument("--tasks", type=int_in(1, 1000), help="number of source tasks")
    p.add_argument("--epochs", type=int_in(1, 10000), help="epochs per task")
    p.add_argument("--seed", type=int_in(0, 2**31 - 1), help="random seed (default 0)")
    p.add_argument("--tau", type=float_in(1e-14, 10), help="criterion threshold recorded exactly")
    p.add_argument("--image-size", type=int_in(8, 256), help="image side in pixels")
    p.add_argument("--device", default="cpu", type=nonempty, help="cpu, cuda, cuda:N or auto (default cpu)")
    add_threads_option(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print a JSON summary")
    p.set_defaults(func=cmd_collective)

    p = sub.add_parser("criterion", help="print a run's layer x task criterion matrix")
    p.add_argument("--run-dir", type=path_text, required=True, help="run directory")
    p.add_argument("--tau", type=float_in(1e-14, 10), help="threshold (default: the run's); any value in the histogram range")
    p.add_argument("--absolute", action="store_true", help="count |g| > tau instead of g > tau")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_criterion)

    for register in _extra_commands():
        register(sub)
    return parser


def _extra_commands() -> list[Callable[[argparse._SubParsersAction], None]]:
    from core import cli_individual

    return [cli_individual.register]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `learngene` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except LearngeneError as exc:
        sys.stderr.write(f"learngene {args.command}: error: {exc}\n")
        return 2
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        sys.stderr.write(f"learngene {args.command}: error: {where}{exc.strerror or exc}; check the path, its permissions and the free space\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write(f"learngene {args.command}: interrupted; finished work is saved (collective runs continue with --resume)\n")
        return 130


if __name__ == "__main__":
    sys.exit(main())
