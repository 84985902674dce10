"""How a page's job ended, and its one-line message in page terms."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.errors import LearngeneError
from explorer.widgets.wording import page_line


@dataclass(frozen=True)
class Outcome:
    """How a job ended: status is 'done', 'cancelled' or 'error'; message is one line for the user; error is the
    exception behind an 'error' (its fixes name the fields to point at)."""

    status: str
    message: str = ""
    result: Any = None
    error: BaseException | None = None


def one_line(exc: BaseException) -> str:
    """The message a user sees for an error, in page terms: LearngeneError's own line, else its type and first line."""
    if isinstance(exc, LearngeneError):
        return page_line(exc)
    return f"unexpected {type(exc).__name__}: {exc}".splitlines()[0]
