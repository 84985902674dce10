"""Argument types and options shared by the `learngene` subcommands: errors are one line with a hint, exit code 2."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Callable


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
        raise argparse.ArgumentTypeError(
            f"path of {len(text):,} characters is too long (at most 255 bytes per name, 4096 in all)"
        )
    return text


def add_threads_option(p: argparse.ArgumentParser) -> None:
    """--threads, shared by the commands that train."""
    p.add_argument(
        "--threads",
        type=int_in(1, 1024),
        help="CPU threads for torch, recorded with the results (default: a resumed run's own count, else torch's; "
        "another count gives other numbers, so a run is resumed with its own; 1 is faster when other programs keep "
        "2 cores busy)",
    )


def thread_count(args: argparse.Namespace) -> int:
    """The torch threads a job of this command uses: --threads, else torch's own count for this machine."""
    if args.threads is not None:
        return args.threads
    import torch

    return torch.get_num_threads()


def print_json(obj: object) -> None:
    """Write `obj` as indented standard JSON (NaN as null, no lone surrogates) on stdout."""
    from core.tables import jsonable

    sys.stdout.write(json.dumps(jsonable(obj), indent=2, allow_nan=False) + "\n")
