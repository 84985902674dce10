"""A restricted unpickler for the official CIFAR-100 files: dicts, lists, strings, numbers and numpy arrays only."""

from __future__ import annotations

import pickle
from typing import IO

import numpy as np
from numpy._core.multiarray import _reconstruct

from core.errors import LearngeneError


class _ArrayType:
    """Stands for numpy.ndarray inside a pickle: an argument of _reconstruct, never a callable.

    Called directly, ndarray(shape, dtype) would hand back uninitialised memory of any size.
    """

    def __call__(self, *args: object) -> None:
        raise pickle.UnpicklingError("it calls numpy.ndarray directly, which CIFAR-100 files never do")


_ARRAY_TYPE = _ArrayType()


def _empty_array(subtype: object, shape: object, dtype: object) -> np.ndarray:
    """numpy's _reconstruct as the official pickles call it: an empty array that the pickle's state then fills."""
    if subtype is not _ARRAY_TYPE or shape != (0,):
        raise pickle.UnpicklingError("it reconstructs an array in a way CIFAR-100 files never do")
    return _reconstruct(np.ndarray, (0,), dtype)


# The only callables the official pickles need: numpy's array reconstruction, under its old and new module.
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"): _empty_array,
    ("numpy._core.multiarray", "_reconstruct"): _empty_array,
    ("numpy", "ndarray"): _ARRAY_TYPE,
    ("numpy", "dtype"): np.dtype,
}
_PICKLE_ERRORS = (
    pickle.UnpicklingError,
    EOFError,
    ValueError,
    TypeError,
    AttributeError,
    IndexError,
    KeyError,
    OverflowError,
)


class _SafeUnpickler(pickle.Unpickler):
    """Builds dicts, lists, strings, numbers and numpy arrays; refuses every other global."""

    def find_class(self, module: str, name: str) -> object:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"it asks for {module}.{name}, which CIFAR-100 files never contain") from None


def text(value: object) -> object:
    return value.decode("latin1") if isinstance(value, bytes) else value


def unpickle(handle: IO[bytes], name: str) -> dict[str, object]:
    """One official pickle as a dict with str keys, whether written by Python 2 or 3."""
    try:
        content = _SafeUnpickler(handle, encoding="latin1").load()
    except _PICKLE_ERRORS as err:
        raise LearngeneError(f"{name} is not a valid CIFAR-100 file ({err}): delete it and get a fresh copy") from err
    except MemoryError:
        raise LearngeneError(
            f"{name} is not a valid CIFAR-100 file (it declares data larger than this machine's memory): delete it "
            "and get a fresh copy"
        ) from None
    if not isinstance(content, dict):
        raise LearngeneError(f"{name} is not a valid CIFAR-100 file (no dict inside): delete it and get a fresh copy")
    return {text(key): value for key, value in content.items()}
