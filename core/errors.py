"""User-facing errors: one line that names the problem and the fix."""

from __future__ import annotations

from collections.abc import Iterable


class LearngeneError(Exception):
    """A problem the user can fix; the CLI prints it as one line and exits with code 2."""


def check_all(checks: Iterable[tuple[bool, str]]) -> None:
    """Raise LearngeneError with the message of the first failed (ok, message) check."""
    for ok, message in checks:
        if not ok:
            raise LearngeneError(message)
