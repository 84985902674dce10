"""A contact sheet of a dataset: a PNG grid with one row per class, to see at a glance what the images look like."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from core.atomic import write_bytes
from core.data.imageset import ImageSet

_GAP = 2  # pixels between cells, at the sheet's scale
_GAP_SHADE = 48  # grey of the gaps, so black cells stay visibly separate


def contact_sheet_image(
    imageset: ImageSet, *, classes: int = 16, per_class: int = 10, scale: int = 2, seed: int = 0
) -> Image.Image:
    """Grid of `per_class` images of each of `classes` classes (chosen by `seed`), enlarged `scale` times."""
    if classes < 1 or per_class < 1 or scale < 1:
        raise ValueError("contact sheet needs at least one class, one image per class and a scale of 1 or more")
    generator = torch.Generator().manual_seed(seed)
    rows = min(classes, imageset.num_classes)
    picked = torch.randperm(imageset.num_classes, generator=generator)[:rows].sort().values.tolist()
    by_class = imageset.indices_by_class()
    height, width = imageset.resolution
    cell_h, cell_w = height * scale, width * scale
    channels = 3 if imageset.channels == 3 else 1
    sheet = np.full(
        (rows * (cell_h + _GAP) + _GAP, per_class * (cell_w + _GAP) + _GAP, channels), _GAP_SHADE, dtype=np.uint8
    )
    for row, label in enumerate(picked):
        for column, index in enumerate(by_class[label][:per_class].tolist()):
            image = imageset.images[index].numpy()
            image = image[:1] if channels == 1 else image[:3]
            cell = image.transpose(1, 2, 0).repeat(scale, axis=0).repeat(scale, axis=1)
            top, left = _GAP + row * (cell_h + _GAP), _GAP + column * (cell_w + _GAP)
            sheet[top : top + cell_h, left : left + cell_w] = cell
    return Image.fromarray(sheet[:, :, 0] if channels == 1 else sheet)


def contact_sheet_png(
    imageset: ImageSet, *, classes: int = 16, per_class: int = 10, scale: int = 2, seed: int = 0
) -> bytes:
    """The contact sheet as PNG bytes (for a web page or a widget)."""
    buffer = io.BytesIO()
    contact_sheet_image(imageset, classes=classes, per_class=per_class, scale=scale, seed=seed).save(
        buffer, format="PNG", optimize=True
    )
    return buffer.getvalue()


def contact_sheet(
    imageset: ImageSet,
    path: str | os.PathLike,
    *,
    classes: int = 16,
    per_class: int = 10,
    scale: int = 2,
    seed: int = 0,
) -> Path:
    """Write the contact sheet to `path` as a PNG, atomically, and return the path."""
    target = Path(path)
    write_bytes(target, contact_sheet_png(imageset, classes=classes, per_class=per_class, scale=scale, seed=seed))
    return target
