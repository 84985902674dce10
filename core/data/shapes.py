"""Tutorial 04's drawn shapes: an `imagefolder` dataset of polygons, stars, circles, crosses and dots, drawn with a
seed into a folder once; a complete folder is reused as it is, so thirty kernels never rewrite (or half-read) it."""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import uuid
from pathlib import Path

from PIL import Image, ImageDraw

SIDE = 48
PER_CLASS = 20
MANIFEST = "shapes.json"  # written last, inside the folder: a folder without it (or with another one) is redrawn
SHAPE_CLASSES = (
    [
        f"{n}-{kind}-{style}"
        for kind, ns in (("polygon", range(3, 9)), ("star", range(5, 9)))
        for n in ns
        for style in ("filled", "outline")
    ]
    + [f"{shape}-{style}" for shape in ("circle", "cross") for style in ("filled", "outline")]
    + [f"{n}-dots" for n in range(1, 7)]
)


def outline_points(kind: str, sides: int, r: float, cx: float, cy: float, turn: float) -> list[tuple[float, float]]:
    """Corners of a regular polygon, or of a star with `sides` spikes."""
    if kind == "polygon":
        return [
            (cx + r * math.cos(turn + 2 * math.pi * k / sides), cy + r * math.sin(turn + 2 * math.pi * k / sides))
            for k in range(sides)
        ]
    radii = [r if k % 2 == 0 else 0.45 * r for k in range(2 * sides)]
    return [
        (cx + q * math.cos(turn + math.pi * k / sides), cy + q * math.sin(turn + math.pi * k / sides))
        for k, q in enumerate(radii)
    ]


def draw_shape(name: str, rng: random.Random) -> Image.Image:
    """One grayscale drawing of class `name` (e.g. '5-star-filled', 'cross-outline', '3-dots')."""
    image = Image.new("L", (SIDE, SIDE), 255)
    pen = ImageDraw.Draw(image)
    r, turn = rng.uniform(12, 19), rng.uniform(0, 2 * math.pi)
    cx, cy = SIDE / 2 + rng.uniform(-3, 3), SIDE / 2 + rng.uniform(-3, 3)
    filled, width = name.endswith("filled"), rng.randint(2, 3)
    parts = name.split("-")
    if parts[1] == "dots":
        centres: list[tuple[float, float]] = []
        while len(centres) < int(parts[0]):
            c = (rng.uniform(8, SIDE - 8), rng.uniform(8, SIDE - 8))
            if all(math.dist(c, d) > 10 for d in centres):
                centres.append(c)
        for x, y in centres:
            pen.ellipse((x - 3.5, y - 3.5, x + 3.5, y + 3.5), fill=0)
    elif parts[0] == "circle":
        pen.ellipse((cx - r, cy - r, cx + r, cy + r), fill=0 if filled else None, outline=0, width=width)
    elif parts[0] == "cross":
        for a in (turn, turn + math.pi / 2):
            dx, dy = r * math.cos(a), r * math.sin(a)
            pen.line((cx - dx, cy - dy, cx + dx, cy + dy), fill=0, width=7 if filled else width)
    else:
        points = outline_points(parts[1], int(parts[0]), r, cx, cy, turn)
        pen.polygon(points, fill=0 if filled else None, outline=0, width=width)
    return image


def _manifest(seed: int, per_class: int) -> dict:
    return {"classes": SHAPE_CLASSES, "per_class": per_class, "seed": seed, "side": SIDE}


def shapes_complete(folder: Path, seed: int = 0, per_class: int = PER_CLASS) -> bool:
    """Whether `folder` holds the drawing of this seed: its manifest, and every class with all its images."""
    folder = Path(folder)
    try:
        if json.loads((folder / MANIFEST).read_text()) != _manifest(seed, per_class):
            return False
        return all(len(list((folder / name).glob("*.png"))) == per_class for name in SHAPE_CLASSES)
    except (OSError, ValueError):
        return False


def ensure_shapes(folder: str | os.PathLike, seed: int = 0, per_class: int = PER_CLASS) -> Path:
    """The shapes dataset in `folder`, drawn with `seed` unless already complete there (then nothing is written).

    The images go into a hidden folder beside it, renamed into place when complete: a reader sees all of them or
    none, and of several processes drawing at once the first rename wins and the others discard theirs. A folder
    that is not a complete drawing of this seed is moved aside and replaced.
    """
    folder = Path(folder).expanduser()
    if shapes_complete(folder, seed, per_class):
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    tag = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    staging = folder.parent / f".{folder.name}.drawing-{tag}"
    try:
        for name in SHAPE_CLASSES:
            (staging / name).mkdir(parents=True)
            for i in range(per_class):
                draw_shape(name, random.Random(f"{seed}-{name}-{i}")).save(staging / name / f"{i:03d}.png")
        (staging / MANIFEST).write_text(json.dumps(_manifest(seed, per_class)))
        if folder.exists() and not shapes_complete(folder, seed, per_class):
            aside = folder.parent / f".{folder.name}.replaced-{tag}"
            try:
                folder.rename(aside)
            except FileNotFoundError:  # another process moved it aside first
                pass
            else:
                shutil.rmtree(aside, ignore_errors=True)
        try:
            staging.rename(folder)
        except OSError:  # another process renamed its complete drawing into place first
            if not shapes_complete(folder, seed, per_class):
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder
