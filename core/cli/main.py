"""The `learngene` command line: datasets, collective, criterion, extract, individual."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from core.cli import collective, data, individual, learngene
from core.cli.arguments import OneLineParser
from core.errors import LearngeneError


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = OneLineParser(
        prog="learngene",
        description="Learngene: collective model, gradient criterion, learngene, few-shot individual models.",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    for group in (data, collective, learngene, individual):
        group.register(sub)
    return parser


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
        sys.stderr.write(
            f"learngene {args.command}: error: {where}{exc.strerror or exc}; "
            "check the path, its permissions and the free space\n"
        )
        return 2
    except KeyboardInterrupt:
        sys.stderr.write(
            f"learngene {args.command}: interrupted; finished work is saved (collective runs continue with --resume)\n"
        )
        return 130


if __name__ == "__main__":
    sys.exit(main())
