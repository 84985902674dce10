"""Named presets of a stage's config dataclass, with overrides."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TypeVar

from core.errors import LearngeneError

Config = TypeVar("Config")


def choose_preset(presets: Mapping[str, Config], name: str, stage: str, overrides: Mapping[str, object]) -> Config:
    """`presets[name]` with the non-None overrides applied, validated; an unknown name is a LearngeneError."""
    if name not in presets:
        raise LearngeneError(f"unknown {stage} preset {name!r}: choose one of {', '.join(presets)}")
    changes = {k: v for k, v in overrides.items() if v is not None}
    return dataclasses.replace(presets[name], **changes).validate()
