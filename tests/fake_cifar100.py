"""A fake CIFAR-100 in the official files' exact format (Python 2 or 3 pickles of train, test and meta), tiny and
generated, for the loader's tests and for the tutorials' CIFAR-100 section."""

from __future__ import annotations

import pickle
import struct
from pathlib import Path

import numpy as np

from core.data import cifar100

NAMES = cifar100.FINE_LABEL_NAMES
TRAIN, TEST = 2, 1  # fake images per class in each split, unless asked for more


def python2_pickle(obj: object) -> bytes:
    """Protocol-2 bytes as Python 2's cPickle wrote the official files: 8-bit strings, numpy.core globals."""
    out = bytearray(b"\x80\x02")

    def emit(value: object) -> None:
        if isinstance(value, dict):
            out.extend(b"}(")
            for key, item in value.items():
                emit(key)
                emit(item)
            out.extend(b"u")
        elif isinstance(value, (list, tuple)):
            out.extend(b"(")
            for item in value:
                emit(item)
            out.extend(b"l" if isinstance(value, list) else b"t")
        elif isinstance(value, bool):
            out.extend(b"\x88" if value else b"\x89")
        elif value is None:
            out.extend(b"N")
        elif isinstance(value, int):
            out.extend(b"J" + struct.pack("<i", value))
        elif isinstance(value, bytes):
            out.extend(b"T" + struct.pack("<I", len(value)) + value)
        else:
            assert isinstance(value, np.ndarray) and value.dtype == np.uint8
            out.extend(b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n(J\x00\x00\x00\x00tU\x01b\x87R")
            out.extend(b"(J\x01\x00\x00\x00")
            emit(tuple(value.shape))
            out.extend(b"cnumpy\ndtype\nU\x02u1J\x00\x00\x00\x00J\x01\x00\x00\x00\x87R")
            emit((3, b"|", None, None, None, -1, -1, 0))
            out.extend(b"b")
            emit(False)
            emit(value.tobytes())
            out.extend(b"tb")  # closes the array's state (1, shape, dtype, fortran, raw bytes) and applies it

    emit(obj)
    out.extend(b".")
    return bytes(out)


def contents(
    names: tuple[str, ...] = NAMES, train: int = TRAIN, test: int = TEST, texture_seed: int | None = None
) -> dict[str, dict]:
    """train, test and meta as the official files hold them (byte-string keys and values): red 200 (or a seeded
    random texture, for training on them), green 100 in train and 50 in test, blue the label."""
    splits = {}
    rng = None if texture_seed is None else np.random.default_rng(texture_seed)
    for split, per_class, green in (("train", train, 100), ("test", test, 50)):
        labels = [c for c in range(len(names)) for _ in range(per_class)]
        data = np.empty((len(labels), 3072), dtype=np.uint8)
        data[:, :1024] = 200 if rng is None else rng.integers(0, 256, size=(len(labels), 1024), dtype=np.uint8)
        data[:, 1024:2048] = green  # tells train from test
        data[:, 2048:] = np.array(labels, dtype=np.uint8)[:, None]  # blue = the label
        splits[split] = {
            b"filenames": [f"{names[c]}_s_{i:06d}.png".encode() for i, c in enumerate(labels)],
            b"batch_label": f"{split}ing batch 1 of 1".encode(),
            b"fine_labels": labels,
            b"coarse_labels": [c // 5 for c in labels],
            b"data": data,
        }
    splits["meta"] = {b"fine_label_names": [n.encode() for n in names], b"coarse_label_names": [b"x"] * 20}
    return splits


def encode(content: dict, style: str) -> bytes:
    """One file's bytes: a Python 2 pickle, or Python 3 with byte-string or str keys."""
    if style == "python2":
        return python2_pickle(content)
    if style == "python3 str keys":
        content = {k.decode(): v for k, v in content.items()}
    return pickle.dumps(content, protocol=3)


def write_folder(base: Path, style: str = "python2", files: dict | None = None) -> Path:
    """`base/cifar-100-python/` holding train, test and meta (default: `contents()`)."""
    folder = base / "cifar-100-python"
    folder.mkdir(parents=True)
    for name, content in (files or contents()).items():
        (folder / name).write_bytes(encode(content, style))
    return folder
