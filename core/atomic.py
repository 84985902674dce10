"""Atomic file writes: a reader sees the old file or the new one, never half of either."""

from __future__ import annotations

import contextlib
import json
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from core.errors import LearngeneError
from core.names import shown

TMP_SUFFIX = ".tmp"
_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def check_replaceable(path: str | os.PathLike, option: str = "") -> None:
    """Refuse a path that holds a symlink or anything but a regular file: a write would replace what it does not own."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        raise LearngeneError(f"{option}{shown(path)} is not usable ({exc.strerror}): choose another file") from None
    if stat.S_ISLNK(mode):
        raise LearngeneError(
            f"{option}{shown(path)} is a symbolic link, which this program does not replace: name the file it points "
            "to, or another file"
        )
    if not stat.S_ISREG(mode):
        kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
        raise LearngeneError(
            f"{option}{shown(path)} is {kind}, which this program does not replace: choose a regular file name"
        )


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success fsync it and rename it over `path` (a regular file only)."""
    target = Path(path)
    check_replaceable(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=TMP_SUFFIX, dir=target.parent)
    except OSError as exc:
        raise _naming(exc, target) from exc
    os.close(fd)
    tmp = Path(tmp_name)
    os.chmod(tmp, 0o666 & ~_UMASK)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        check_replaceable(target)
        os.replace(tmp, target)
    except OSError as exc:
        if exc.filename is not None and exc.filename not in (tmp_name, str(target)):
            raise
        raise _naming(exc, target) from exc
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(target.parent)


def _naming(exc: OSError, target: Path) -> OSError:
    """The same error naming the file the caller meant to write, not its temporary (a full disk names no file)."""
    return OSError(exc.errno, exc.strerror or str(exc), str(target))


def leftover_temporaries(folder: str | os.PathLike, names: str = "*") -> list[Path]:
    """Temporary files in `folder` of writes to `names` (a glob) that a crash or kill -9 stopped before their rename."""
    return sorted(p for p in Path(folder).glob(f".{names}.*{TMP_SUFFIX}") if p.is_file())


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write bytes atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write text (UTF-8) atomically."""
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj: object) -> None:
    """Write JSON atomically, indented and key-sorted so diffs stay readable."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")
