"""JSON from files a stranger may have written: parse errors, deep nesting and oversized text become ValueError."""

from __future__ import annotations

import json

MAX_DEPTH = 64


def parse(text: str | bytes, max_depth: int = MAX_DEPTH) -> object:
    """The JSON value of `text`, or ValueError saying why not (bad syntax, nesting deeper than `max_depth`)."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise ValueError(f"it is nested deeper than {max_depth} levels") from None
    except UnicodeDecodeError:
        raise ValueError("it is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"it is not JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from None
    if depth(value) > max_depth:
        raise ValueError(f"it is nested deeper than {max_depth} levels")
    return value


def depth(value: object) -> int:
    """How deeply lists and dicts nest in `value` (a scalar is 0), counted without recursion."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            stack.extend((v, level + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, level + 1) for v in item)
        else:
            deepest = max(deepest, level)
            continue
        deepest = max(deepest, level + 1)
    return deepest
