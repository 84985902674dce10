"""Names from the user's disk made safe to show: one line in a message, valid Unicode in JSON and CSV."""

from __future__ import annotations

import os
import unicodedata

# The escapes a reader knows from Python and C; other control characters become \xNN or \uNNNN.
_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def decoded(name: str | bytes | os.PathLike) -> str:
    """`name` as valid Unicode: bytes that are not UTF-8 (surrogateescape'd by the file system) become \\xNN."""
    raw = os.fspath(name)
    if isinstance(raw, str):
        try:
            raw = os.fsencode(raw)
        except UnicodeEncodeError:
            return raw.encode("utf-8", "backslashreplace").decode("utf-8")
    return raw.decode("utf-8", "backslashreplace")


def shown(name: str | bytes | os.PathLike) -> str:
    """`name` for a one-line message: undecodable bytes and control characters (newline, ANSI escape) escaped."""
    return "".join(_escaped(ch) for ch in decoded(name))


def _escaped(ch: str) -> str:
    if ch in _ESCAPES:
        return _ESCAPES[ch]
    if unicodedata.category(ch) not in ("Cc", "Cf", "Zl", "Zp", "Cs"):
        return ch
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def clip(text: str, limit: int = 40) -> str:
    """`text` cut to `limit` characters (ending in "...") so that a message stays one short line."""
    return text if len(text) <= limit else text[: limit - 3] + "..."
