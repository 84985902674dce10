"""Tensor files in safetensors format: loading never unpickles, so a stranger's file is safe to open."""

from __future__ import annotations

import hashlib
import json
import os
import struct
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from core import safejson
from core.atomic import write_bytes
from core.errors import LearngeneError
from core.names import shown

MAX_HEADER_BYTES = 100_000_000  # safetensors' own limit on a header
MAX_DIMENSION = 2**62  # torch holds sizes as signed 64-bit numbers; larger ones overflow while the tensor is made


def save_tensors(path: str | os.PathLike, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> str:
    """Write tensors plus string metadata atomically; return the file's sha256."""
    data = tensor_bytes(tensors, metadata)
    write_bytes(path, data)
    return hashlib.sha256(data).hexdigest()


def tensor_bytes(tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> bytes:
    """The safetensors file of `tensors` and `metadata`, the same bytes for the same content in any process.

    safetensors writes the metadata in hash order, which differs between calls; the header is written again here
    with the metadata sorted by key (tensors keep safetensors' order and offsets, the padding stays a multiple of 8).
    """
    data = st_save({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, metadata=metadata)
    header_len = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8 : 8 + header_len])
    if "__metadata__" in header:
        header["__metadata__"] = dict(sorted(header["__metadata__"].items()))
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data[8 + header_len :]


def read_tensors(path: str | os.PathLike, sha256: str | None = None) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Read a safetensors file (checking its sha256 when given); a damaged file is a LearngeneError naming it."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise LearngeneError(f"cannot read {shown(path)}: {exc.strerror}; check the path and its permissions") from None
    if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
        raise LearngeneError(
            f"{shown(path)} is corrupted (checksum differs from the run manifest): restore it from a backup, or move "
            "the run away and train it again"
        )
    try:
        _check_shapes(data)
        tensors = st_load(data)
        metadata = _metadata(data)
    except (SafetensorError, ValueError, RuntimeError, OSError, TypeError, OverflowError, struct.error) as exc:
        problem = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise LearngeneError(f"{shown(path)} is not a valid safetensors file ({problem}): recreate it") from None
    return tensors, metadata


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The string metadata of a safetensors file, read from its header alone; {} when it has none or is damaged."""
    try:
        with open(path, "rb") as handle:
            header_len = struct.unpack("<Q", handle.read(8))[0]
            if header_len > MAX_HEADER_BYTES:
                return {}
            header = json.loads(handle.read(header_len))
    except (OSError, struct.error, ValueError, RecursionError):
        return {}
    found = header.get("__metadata__") if isinstance(header, dict) else None
    return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {}


def _check_shapes(data: bytes) -> None:
    """ValueError unless every tensor's shape in the header is a list of whole numbers torch can hold."""
    header_len = struct.unpack("<Q", data[:8])[0]
    if header_len > MAX_HEADER_BYTES:
        raise ValueError(f"its header claims {header_len:,} bytes")
    header = safejson.parse(data[8 : 8 + header_len])
    if not isinstance(header, dict):
        raise ValueError("its header is not a JSON object")
    for name, entry in header.items():
        shape = entry.get("shape") if isinstance(entry, dict) and name != "__metadata__" else []
        if not isinstance(shape, list) or not all(_dimension(d) for d in shape):
            raise ValueError(f"tensor {shown(name)} has shape {shown(str(shape)[:80])}, not whole numbers below 2**62")


def _dimension(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < MAX_DIMENSION


def _metadata(data: bytes) -> dict[str, str]:
    header_len = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8 : 8 + header_len])
    return dict(header.get("__metadata__", {}) or {})
