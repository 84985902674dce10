"""Learngene files: a block of conv layers (weights, BatchNorm parameters and running statistics) plus metadata.

The file is safetensors with string metadata whose values are JSON. Loading never unpickles, and a file whose
metadata and tensors disagree is rejected, so a stranger's learngene is safe to open.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from core import safejson
from core.checkpoint import read_tensors, save_tensors, tensor_bytes
from core.collective.network import NetSpec
from core.errors import Action, LearngeneError
from core.learngene.selection import block_label, conv_index, validate_block
from core.names import shown

FORMAT_VERSION = 2  # 2: the tensors' sha256 in the metadata
METADATA_DEPTH = 16
MAX_CHANNELS = 65536
# Whole-number metadata fields and the values a learngene of this program can have.
FIELD_RANGES = {
    "in_channels": (1, MAX_CHANNELS),
    "input_size": (1, 256),
    "image_channels": (1, 4),
    "image_size": (8, 256),
    "task": (0, 1000),
}
KIND = "learngene"
# Every layer of a learngene holds exactly these tensors (the state of a conv + BatchNorm block).
LAYER_KEYS = (
    "conv.weight",
    "conv.bias",
    "bn.weight",
    "bn.bias",
    "bn.running_mean",
    "bn.running_var",
    "bn.num_batches_tracked",
)
NETWORK = "network"  # optional: the collective's spec at extraction, which shapes the layers after the block
_METADATA = (
    "format",
    "kind",
    "layers",
    "shapes",
    "in_channels",
    "input_size",
    "pools",
    "image_channels",
    "image_size",
    "dataset",
    "run",
    "task",
    "selection",
    "scores",
    "tensors_sha256",
)


@dataclass(frozen=True, eq=False)
class Learngene:
    """Inherited conv layers with where they came from and what they expect as input."""

    layers: tuple[str, ...]
    tensors: dict[str, torch.Tensor] = field(repr=False)
    in_channels: int
    input_size: int
    pools: tuple[str, ...]
    image_channels: int
    image_size: int
    dataset: str
    run: str
    task: int
    selection: dict[str, Any] = field(default_factory=dict, repr=False)
    scores: dict[str, Any] = field(default_factory=dict, repr=False)
    network: NetSpec | None = field(default=None, repr=False)

    @property
    def starts_at_input(self) -> bool:
        """Whether the block begins with the input layer conv1 (front inheritance): no new front is needed."""
        return self.layers[0] == "conv1"

    @property
    def label(self) -> str:
        """ "conv5-conv6"."""
        return block_label(self.layers)

    @property
    def widths(self) -> tuple[int, ...]:
        """Output channels of each layer."""
        return tuple(int(self.tensors[f"{n}.conv.weight"].shape[0]) for n in self.layers)

    @property
    def out_channels(self) -> int:
        """Channels leaving the block."""
        return self.widths[-1]

    def layer_state(self, name: str) -> dict[str, torch.Tensor]:
        """The state dict of one layer's conv + BN block ("conv.weight", "bn.running_mean", ...)."""
        return {key: self.tensors[f"{name}.{key}"] for key in LAYER_KEYS}

    def num_parameters(self) -> int:
        """Trainable entries (conv and BN affine; running statistics excluded)."""
        return sum(self.tensors[f"{n}.{k}"].numel() for n in self.layers for k in LAYER_KEYS[:4])

    def metadata(self) -> dict[str, str]:
        """The file's metadata: every value JSON-encoded."""
        shapes = {k: list(v.shape) for k, v in sorted(self.tensors.items())}
        values = {
            "format": FORMAT_VERSION,
            "kind": KIND,
            "layers": list(self.layers),
            "shapes": shapes,
            "in_channels": self.in_channels,
            "input_size": self.input_size,
            "pools": list(self.pools),
            "image_channels": self.image_channels,
            "image_size": self.image_size,
            "dataset": self.dataset,
            "run": self.run,
            "task": self.task,
            "selection": self.selection,
            "scores": self.scores,
            "tensors_sha256": tensors_sha256(self.tensors),
        }
        if self.network is not None:
            values[NETWORK] = self.network.to_dict()
        return {k: json.dumps(v, sort_keys=True) for k, v in values.items()}

    def describe(self) -> dict[str, Any]:
        """A JSON-ready summary (no tensors)."""
        meta = {k: json.loads(v) for k, v in self.metadata().items()}
        meta.pop("shapes")
        meta["widths"] = list(self.widths)
        meta["params"] = self.num_parameters()
        return meta


def save(learngene: Learngene, path: str | os.PathLike) -> Path:
    """Write the learngene atomically as safetensors; returns the path."""
    path = Path(path).expanduser()
    save_tensors(path, learngene.tensors, learngene.metadata())
    return path


def encoded(learngene: Learngene) -> bytes:
    """The learngene file's bytes, for writing elsewhere than a file (standard output)."""
    return tensor_bytes(learngene.tensors, learngene.metadata())


def load(path: str | os.PathLike) -> Learngene:
    """Read and check a learngene file; any disagreement between metadata and tensors is a LearngeneError naming it."""
    path = Path(path).expanduser()
    tensors, raw = read_tensors(path)

    def bad(problem: str) -> LearngeneError:
        return LearngeneError(
            f"{shown(path)} is not a valid learngene file ({problem}): extract it again with ", Action("extract")
        )

    missing = [k for k in _METADATA if k not in raw]
    if missing:
        raise bad(f"metadata lacks {', '.join(missing)}")
    meta = {}
    for key in _METADATA:
        try:
            meta[key] = safejson.parse(raw[key], max_depth=METADATA_DEPTH)
        except ValueError as exc:
            raise bad(f"metadata {key}: {exc}") from None
    if meta["kind"] != KIND:
        raise bad(f"kind is {meta['kind']!r}, not {KIND!r}")
    if not _whole(meta["format"]):
        raise bad(f"format is {meta['format']!r}, not a version number")
    if meta["format"] != FORMAT_VERSION:
        raise bad(f"it is format version {meta['format']}; this program reads version {FORMAT_VERSION} only")
    layers = meta["layers"]
    if not isinstance(layers, list) or not layers or not all(isinstance(n, str) for n in layers):
        raise bad("layers is not a list of names")
    ok, message, _ = _block_ok(layers)
    if not ok:
        raise bad(message)
    expected = {f"{n}.{k}" for n in layers for k in LAYER_KEYS}
    absent, extra = sorted(expected - set(tensors)), sorted(set(tensors) - expected)
    if absent:
        raise bad(
            f"metadata names {', '.join(sorted({a.split('.')[0] for a in absent}))} but tensors "
            f"{', '.join(absent[:3])} are missing"
        )
    if extra:
        raise bad(f"tensors {', '.join(extra[:3])} are not part of layers {block_label(layers)}")
    shapes = meta["shapes"]
    if not isinstance(shapes, dict) or set(shapes) != expected:
        raise bad("the shapes in the metadata do not list exactly the file's tensors")
    for key in sorted(expected):
        if list(tensors[key].shape) != shapes[key]:
            raise bad(f"{key} has shape {list(tensors[key].shape)}, the metadata says {shapes[key]}")
    _check_fields(meta, bad)
    _check_chain(layers, tensors, meta, bad)
    if meta["tensors_sha256"] != tensors_sha256(tensors):
        raise LearngeneError(
            f"{shown(path)} is corrupted (its tensors do not match the checksum in its metadata): extract it "
            "again with ",
            Action("extract"),
        )
    learngene = Learngene(
        layers=tuple(layers),
        tensors=tensors,
        in_channels=meta["in_channels"],
        input_size=meta["input_size"],
        pools=tuple(meta["pools"]),
        image_channels=meta["image_channels"],
        image_size=meta["image_size"],
        dataset=meta["dataset"],
        run=meta["run"],
        task=meta["task"],
        selection=meta["selection"],
        scores=meta["scores"],
        network=_network(raw, bad),
    )
    problem = geometry_problem(learngene)
    if learngene.network is not None:
        problem = problem or spec_problem(learngene, learngene.network)
    if problem:
        raise bad(f"{problem}, so its metadata disagrees with its layers")
    return learngene


def geometry_problem(learngene: Learngene) -> str | None:
    """Whether the input the block expects can come from the images it names: same channels and size at conv1,
    else a size the pools before the block halve the image side to."""
    image, size = learngene.image_size, learngene.input_size
    if learngene.starts_at_input and (learngene.in_channels, size) != (learngene.image_channels, image):
        return (
            f"conv1 takes {learngene.in_channels} channels at {size}px, but the images have "
            f"{learngene.image_channels} channels at {image}px"
        )
    if all(image // 2**k != size for k in range(image.bit_length())):
        return f"input_size {size} is not image_size {image} halved by pools"
    return None


def spec_problem(learngene: Learngene, spec: NetSpec) -> str | None:
    """Where the learngene differs from the layers of `spec` it claims to be (channels, widths, sizes, pools)."""
    names = spec.layer_names()
    missing = [n for n in learngene.layers if n not in names]
    if missing:
        return f"the network has no {', '.join(missing)}"
    first = conv_index(learngene.layers[0])
    channels = ((spec.in_channels,) + spec.widths)[first - 1]
    size = spec.image_size // 2 ** sum(1 for p in spec.pool_after if p < first)
    block = {conv_index(n) for n in learngene.layers}
    pools = tuple(f"conv{p}" for p in sorted(spec.pool_after) if p in block)
    expected = {
        "image_size": (learngene.image_size, spec.image_size),
        "image_channels": (learngene.image_channels, spec.in_channels),
        "in_channels": (learngene.in_channels, channels),
        "input_size": (learngene.input_size, size),
        "widths": (list(learngene.widths), [spec.widths[i - 1] for i in sorted(block)]),
        "pools": (list(learngene.pools), list(pools)),
    }
    differ = [
        f"{name} {mine} where the network has {theirs}" for name, (mine, theirs) in expected.items() if mine != theirs
    ]
    return differ[0] if differ else None


def _network(raw: dict[str, str], bad) -> NetSpec | None:
    """The collective's network recorded in the metadata (files written before it was recorded have none)."""
    if NETWORK not in raw:
        return None
    try:
        data = safejson.parse(raw[NETWORK], max_depth=METADATA_DEPTH)
        if not isinstance(data, dict):
            raise TypeError("not an object")
        network = NetSpec.from_dict(data)
        if max(network.widths + network.hidden, default=1) > 65536:
            raise ValueError("a layer wider than 65536")
        return network
    except (TypeError, ValueError, OverflowError, LearngeneError) as exc:
        raise bad(f"its network record is not a network spec ({type(exc).__name__})") from None


def tensors_sha256(tensors: dict[str, torch.Tensor]) -> str:
    """A digest of every tensor's name, dtype, shape and bytes, so that damage to the data is detected on load."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].detach().contiguous().cpu()
        digest.update(f"{name}|{tensor.dtype}|{list(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _block_ok(layers: list[str]) -> tuple[bool, str, tuple[str, ...]]:
    """Whether the names form a valid block of some conv network (the file does not carry the whole network)."""
    if any(conv_index(n) is None for n in layers):
        return False, "layers must all be conv layers", ()
    deepest = max((conv_index(n) for n in layers), default=1)
    ok, message, block = validate_block(tuple(f"conv{i}" for i in range(1, deepest + 1)), tuple(layers))
    if ok and block != tuple(layers):
        return False, f"layers {', '.join(layers)} are not in network order", block
    return ok, message, block


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_fields(meta: dict[str, Any], bad) -> None:
    """The input and provenance fields must have their types and lie in the ranges this program trains with."""
    for name, (low, high) in FIELD_RANGES.items():
        if not _whole(meta[name]) or not low <= meta[name] <= high:
            raise bad(f"{name} is {meta[name]!r}, not a whole number from {low} to {high}")
    for name in ("dataset", "run"):
        if not isinstance(meta[name], str):
            raise bad(f"{name} is not text")
    for name in ("selection", "scores"):
        if not isinstance(meta[name], dict):
            raise bad(f"{name} is not an object")
    if not isinstance(meta["pools"], list) or any(p not in meta["layers"] for p in meta["pools"]):
        raise bad("pools must name layers of the block")


def _check_chain(layers: list[str], tensors: dict[str, torch.Tensor], meta: dict[str, Any], bad) -> None:
    """Channels must flow from one layer into the next through 3x3 kernels, BN must match its conv, values finite."""
    channels = meta["in_channels"]
    for name in layers:
        weight = tensors[f"{name}.conv.weight"]
        if weight.dim() != 4 or not weight.is_floating_point():
            raise bad(f"{name}.conv.weight is not a float 4-D conv weight")
        if tuple(weight.shape[2:]) != (3, 3):
            raise bad(f"{name}.conv.weight has {weight.shape[2]}x{weight.shape[3]} kernels, not 3x3")
        if weight.shape[1] != channels:
            raise bad(f"{name} takes {weight.shape[1]} channels but receives {channels}")
        out = weight.shape[0]
        if not 1 <= out <= MAX_CHANNELS:
            raise bad(f"{name} has {out} output channels, not 1 to {MAX_CHANNELS}")
        for key in LAYER_KEYS[1:6]:
            tensor = tensors[f"{name}.{key}"]
            if tuple(tensor.shape) != (out,) or not tensor.is_floating_point():
                raise bad(f"{name}.{key} has shape {list(tensor.shape)} {tensor.dtype}, expected [{out}] floats")
        counter = tensors[f"{name}.bn.num_batches_tracked"]
        if counter.dim() != 0 or counter.is_floating_point() or counter.is_complex():
            raise bad(f"{name}.bn.num_batches_tracked is not a single whole number")
        if not all(torch.isfinite(tensors[f"{name}.{key}"]).all() for key in LAYER_KEYS[:6]):
            raise bad(f"{name} holds NaN or infinite values")
        channels = out
    size = meta["input_size"]
    for name in layers:
        if name in meta["pools"]:
            size //= 2
    if size < 1:
        raise bad(f"input size {meta['input_size']} is too small for {len(meta['pools'])} pools")
