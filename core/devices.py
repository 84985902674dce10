"""Where tensors live: cpu, cuda, cuda:N or auto."""

from __future__ import annotations

import torch

from core.errors import LearngeneError, Setting


def resolve_device(device: str) -> str:
    """'auto' picks CUDA when present; an unavailable device is a clear error."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise LearngeneError(f"device {device!r} is not available on this machine: use ", Setting("device", "cpu"))
    if device != "cpu" and not device.startswith("cuda"):
        raise LearngeneError(f"unknown device {device!r}: use cpu, cuda, cuda:N or auto")
    return device
