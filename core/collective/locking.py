"""The run directory's lock: one writer at a time, and a way for readers to tell that a writer is at work."""

from __future__ import annotations

import errno
import fcntl
import os
import time
from pathlib import Path

from core.errors import LearngeneError, Setting

LOCK = ".lock"
LOCK_TRIES = 10


class RunLock:
    """An exclusive advisory lock on a run directory, so two processes never write one run.

    On read-only media the lock file is locked read-only (or, absent, not at all) and `read_only` is set: the run
    can then be reused when finished, never written.
    """

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / LOCK
        self.handle = None
        self.read_only = False

    def __enter__(self) -> RunLock:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.handle = open(self.path, "a+")
        except OSError as exc:
            if exc.errno not in (errno.EROFS, errno.EACCES, errno.EPERM):
                raise
            self.read_only = True
            try:
                self.handle = open(self.path)
            except OSError:
                return self
        self._acquire()
        if not self.read_only:
            self.handle.seek(0)
            self.handle.truncate()
            self.handle.write(str(os.getpid()))
            self.handle.flush()
        return self

    def _acquire(self) -> None:
        """Take the lock, waiting briefly: a reader's probe (`writer_active`) holds it for a moment."""
        for _ in range(LOCK_TRIES):
            try:
                fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
            time.sleep(0.05)
        self.handle.close()
        self.handle = None
        raise LearngeneError(
            f"run directory {self.path.parent} is in use by another process: wait for it to finish or choose another ",
            Setting("run_dir"),
        )

    def __exit__(self, *exc: object) -> None:
        if self.handle is not None:
            fcntl.flock(self.handle, fcntl.LOCK_UN)
            self.handle.close()
            self.handle = None


def writer_active(run_dir: Path) -> bool:
    """Whether some process holds the run's lock now (it is training the run)."""
    try:
        fd = os.open(run_dir / LOCK, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as exc:
        return exc.errno in (errno.EAGAIN, errno.EACCES)
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)
