"""Stable job keys: a hash of everything that changes a job's result, the same in every process and machine."""

from __future__ import annotations

import hashlib
import json

KEY_DIGITS = 16


def canonical_json(value: object) -> str:
    """JSON with sorted keys and no spaces: equal values give equal text (tuples as lists)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


def job_key(kind: str, payload: object) -> str:
    """`kind-<hex>`: the kind, then the first hex digits of the sha256 of the payload's canonical JSON."""
    digest = hashlib.sha256(canonical_json(payload).encode("utf-8")).hexdigest()
    return f"{kind}-{digest[:KEY_DIGITS]}"
