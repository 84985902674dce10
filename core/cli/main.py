"""The `learngene` command line: datasets, collective, criterion, health, extract, individual, sweep, classroom."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from core.cli import classroom, collective, data, individual, learngene, messages, stopping, sweep
from core.cli.arguments import OneLineParser
from core.cli.partial import Interrupted
from core.errors import LearngeneError
from core.names import shown


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = OneLineParser(
        prog="learngene",
        description="Learngene: collective model, gradient criterion, learngene, few-shot individual models.",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    for group in (data, collective, learngene, individual, sweep, classroom):
        group.register(sub)
    return parser


INTERRUPTED = {
    "collective": "finished tasks are committed; continue with the same command and --resume",
    "individual": "no target task had finished, nothing was written",
    "classroom": "finished tasks are committed; the same command continues the runs",
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `learngene` console script; SIGTERM stops it the way Ctrl-C does."""
    parser = build_parser()
    args = parser.parse_args(argv)
    previous = stopping.stop_on_sigterm()
    try:
        return args.func(args)
    except LearngeneError as exc:
        sys.stderr.write(f"learngene {args.command}: error: {shown(messages.line(exc))}\n")
        return 2
    except OSError as exc:
        where = f"{shown(exc.filename)}: " if exc.filename else ""
        sys.stderr.write(
            f"learngene {args.command}: error: {where}{shown(str(exc.strerror or exc))}; "
            "check the path, its permissions and the free space\n"
        )
        return 2
    except KeyboardInterrupt as exc:
        detail = str(exc) if isinstance(exc, Interrupted) else INTERRUPTED.get(args.command, "no file was half-written")
        signals = stopping.received
        how = "terminated (SIGTERM)" if signals else "interrupted"
        sys.stderr.write(f"learngene {args.command}: {how}; {detail}\n")
        return 128 + signals[0] if signals else 130
    finally:
        stopping.restore(previous)


if __name__ == "__main__":
    sys.exit(main())
