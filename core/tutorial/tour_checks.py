"""Checks for the exercises of tutorial 01 (the paradigm tour), computed from the student's own run and files."""

from __future__ import annotations

import os
from collections.abc import Collection, Sequence

from safetensors import safe_open

from core.collective.runs import Run
from core.tutorial.verdict import Verdict, compare_learngene, correct, first_unanswered, method_row, wrong

# What a learngene file could carry, each with the tensor-name test that says whether a file holds it. Items that
# are no tensors of a conv + BatchNorm block (images, labels, the head, the optimiser) never match.
FILE_CONTENTS = {
    "conv weights": lambda key: key.endswith("conv.weight"),
    "conv biases": lambda key: key.endswith("conv.bias"),
    "BatchNorm weights and biases": lambda key: key.endswith(("bn.weight", "bn.bias")),
    "BatchNorm running statistics": lambda key: key.endswith(("bn.running_mean", "bn.running_var")),
    "source images": lambda key: False,
    "source labels": lambda key: False,
    "the collective model's head": lambda key: key.startswith(("fc", "head")),
    "optimiser state": lambda key: "momentum" in key or key.startswith("optim"),
}


def exercise_1_1(gained: int | None, run: Run) -> Verdict:
    """Ex. 1: the parameters the collective model gained over its stream, against its first and last checkpoints."""
    if (missing := first_unanswered(gained=gained)) is not None:
        return missing
    expected = run.load_net(run.last_task).num_parameters() - run.load_net(0).num_parameters()
    if int(gained) == expected:
        return correct("every widening also adds input weights to the layer after the widened one")
    if int(gained) < expected:
        return wrong(
            "too few: the new output channels of a widened layer are new inputs of the next layer (conv or fc1), and "
            "BatchNorm has parameters per channel too"
        )
    return wrong("too many: count the network after the first task and after the last one, not every checkpoint")


def exercise_1_2(longer_answer: str | None, rows: Sequence[dict], longer_rows: Sequence[dict] | None) -> Verdict:
    """Ex. 2: does the learngene one layer longer score higher than the default one, paired by target task?"""
    if (missing := first_unanswered(longer_rows=longer_rows, longer_answer=longer_answer)) is not None:
        return missing
    default, longer = method_row(rows, "learngene"), method_row(longer_rows, "learngene")
    if default is not None and longer is not None and longer["layers"] == default["layers"]:
        return wrong("your longer learngene holds the same layers as the default one: select k + 1 layers")
    words = {"higher": "longer", "lower": "default", "cannot tell": "cannot tell"}
    return compare_learngene(longer_answer, longer_rows, rows, ("longer_rows", "rows"), words)


def exercise_1_3(frozen_answer: str | None, rows: Sequence[dict], frozen_rows: Sequence[dict] | None) -> Verdict:
    """Ex. 3: does freezing the inherited block raise or lower the learngene model's accuracy, paired by task?"""
    if (missing := first_unanswered(frozen_rows=frozen_rows, frozen_answer=frozen_answer)) is not None:
        return missing
    words = {"higher": "up", "lower": "down", "cannot tell": "cannot tell"}
    return compare_learngene(frozen_answer, frozen_rows, rows, ("frozen_rows", "rows"), words)


def exercise_1_4(received: Collection[str] | None, path: str | os.PathLike) -> Verdict:
    """Ex. 4: which of FILE_CONTENTS travel in the learngene file at `path`, read from the file's tensor names."""
    if (missing := first_unanswered(received=received)) is not None:
        return missing
    unknown = set(received) - set(FILE_CONTENTS)
    if unknown:
        return wrong(f"choose among {sorted(FILE_CONTENTS)}; unknown: {sorted(unknown)}")
    with safe_open(os.fspath(path), framework="pt") as file:
        keys = list(file.keys())
    held = {item for item, holds in FILE_CONTENTS.items() if any(holds(key) for key in keys)}
    extra, left_out = set(received) - held, held - set(received)
    if not extra and not left_out:
        return correct(
            f"the file holds {len(keys)} tensors, all of them state of the inherited conv + BatchNorm layers"
        )
    hints = []
    if extra:
        hints.append(f"{len(extra)} of your items are not in the file")
    if left_out:
        hints.append(f"the file holds {len(left_out)} more of the items")
    return wrong("; ".join(hints) + " (list its tensors: `safetensors.safe_open(path, 'pt').keys()`)")
