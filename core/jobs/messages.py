"""Engine events as small plain messages (msgpack-able), so a job's events reach its asker from any worker."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from core.events import EpochEnded, MethodFinished, Note, PlanReady, TargetTaskFinished, TaskFinished, TaskStarted

EVENT_TYPES = {
    cls.__name__: cls
    for cls in (TaskStarted, EpochEnded, TaskFinished, TargetTaskFinished, MethodFinished, Note, PlanReady)
}
ARRAY = "__array__"


def to_message(event: object) -> dict[str, Any] | None:
    """The event as {"type": name, "fields": plain values}; None for objects that are not engine events."""
    name = type(event).__name__
    if EVENT_TYPES.get(name) is not type(event):
        return None
    return {"type": name, "fields": {f.name: _plain(getattr(event, f.name)) for f in dataclasses.fields(event)}}


def from_message(message: dict[str, Any]) -> object:
    """The event a message was made from (arrays and tuples restored)."""
    cls = EVENT_TYPES[message["type"]]
    fields = {name: _restored(value) for name, value in message["fields"].items()}
    for f in dataclasses.fields(cls):
        if isinstance(fields.get(f.name), list) and "tuple" in str(f.type):
            fields[f.name] = _tuples(fields[f.name])
    return cls(**fields)


def _plain(value: object) -> object:
    if isinstance(value, np.ndarray):
        return {ARRAY: value.tolist(), "dtype": str(value.dtype), "shape": list(value.shape)}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _restored(value: object) -> object:
    if isinstance(value, dict):
        if ARRAY in value:
            return np.asarray(value[ARRAY], dtype=value["dtype"]).reshape(value["shape"])
        return {k: _restored(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_restored(v) for v in value]
    return value


def _tuples(value: object) -> object:
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value
