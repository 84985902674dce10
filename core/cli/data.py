"""`learngene datasets`: what is available here, and how to get the rest."""

from __future__ import annotations

import argparse

from core.cli.arguments import path_text, print_json
from core.cli.messages import words


def cmd_datasets(args: argparse.Namespace) -> int:
    """List every dataset, its size and whether it is available here."""
    from core.data.datasets import describe_all

    infos = describe_all(args.root)
    if args.json:
        print_json([i.as_dict(words) for i in infos])
        return 0
    for i in infos:
        size = f"{i.classes} classes, {i.images} images" if i.available else "not available"
        print(f"{i.name:12} {size}, {i.resolution[0]}x{i.resolution[1]}x{i.channels}: {i.description}")
        if not i.available:
            print(f"{'':12} why: {words(i.reason)}; how: {words(i.how_to_get)}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add `datasets` to the main parser."""
    p = sub.add_parser("datasets", help="list datasets and whether they are available here")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--root", type=path_text, help="data root (default: $LEARNGENE_DATA)")
    p.set_defaults(func=cmd_datasets)
