"""Output options (--out, --out-json, --out-csv): checked before any work, written atomically or to stdout with -."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from core.atomic import check_replaceable, write_bytes
from core.errors import LearngeneError
from core.names import shown

STDOUT = "-"
# Names of this process's own streams: replacing them would replace a system link, writing them a terminal or pipe.
_STREAMS = re.compile(r"/dev/(stdin|stdout|stderr|tty|fd(/.*)?)|/proc/(self|thread-self|\d+)/fd(/.*)?")


def check_outputs(options: Sequence[tuple[str, str | None]], stdout_user: str | None = None) -> None:
    """Refuse, before any work, outputs that are not new or regular files, or that name one file (or stdout) twice.

    `options` are (option, path or None) pairs; `stdout_user` names an option that already prints to stdout.
    """
    chosen = [(option, path) for option, path in options if path]
    to_stdout = [option for option, path in chosen if path == STDOUT] + ([stdout_user] if stdout_user else [])
    if len(to_stdout) > 1:
        raise LearngeneError(
            f"{' and '.join(to_stdout)} cannot share standard output: give all but one of them a file name"
        )
    seen: dict[object, str] = {}
    for option, path in chosen:
        if path == STDOUT:
            continue
        check_output(path, option)
        for key in _identities(path):
            if key in seen:
                raise LearngeneError(
                    f"{seen[key]} and {option} both name {shown(path)}, so one would overwrite the other: give each "
                    "its own file"
                )
        seen.update(dict.fromkeys(_identities(path), option))


def check_output(path: str, option: str) -> Path:
    """`path` as a Path, unless it is a stream, a symlink, not a regular file, or inside a run outside its export/."""
    from core.collective.runs import check_output_path

    target = Path(path).expanduser()
    if _STREAMS.fullmatch(os.path.abspath(target)):
        raise LearngeneError(
            f"{option} {shown(path)} is a stream of this process, not a file: write `{option} -` to print to "
            "standard output"
        )
    check_replaceable(target, f"{option} ")
    return check_output_path(target, option)


def _identities(path: str) -> list[object]:
    """What makes two paths one file: the resolved path, and the device and inode when the file exists."""
    target = Path(path).expanduser()
    keys: list[object] = [target.resolve()]
    try:
        info = os.stat(target)
    except OSError:
        return keys
    return keys + [(info.st_dev, info.st_ino)]


def write_output(path: str, content: str | bytes) -> None:
    """Write `content` atomically to the file `path`, or to standard output when `path` is -."""
    data = content.encode("utf-8") if isinstance(content, str) else content
    if path != STDOUT:
        write_bytes(Path(path).expanduser(), data)
        return
    sys.stdout.flush()
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


def where(path: str) -> str:
    """How a message names an output: the path, or "standard output" for -."""
    return "standard output" if path == STDOUT else shown(Path(path).expanduser())
