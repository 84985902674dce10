"""Ink polarity: whether images are bright ink on a dark background (glyphs, Omniglot as loaded) or the reverse.

A learngene trained on bright strokes sees dark strokes on white as a different picture, so target images are
brought to the training images' polarity: `invert` auto compares the two backgrounds, yes and no force it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from core.errors import LearngeneError

INVERT_MODES = ("auto", "yes", "no")
DARK, LIGHT = 0.35, 0.65  # background brightness (0-1) below which it counts as dark, above which as light


def background(images: torch.Tensor) -> float:
    """Brightness (0-1) of the images' background: the median over images of their one-pixel border's mean."""
    if images.numel() == 0:
        return 0.0
    frame = torch.cat([images[:, :, 0, :], images[:, :, -1, :], images[:, :, :, 0], images[:, :, :, -1]], dim=2).float()
    return float(frame.mean(dim=(1, 2)).median()) / 255.0


def tone(level: float | None) -> str:
    """ "dark", "light" or "grey" (neither clearly): how a background brightness reads."""
    if level is None:
        return "unknown"
    return "dark" if level < DARK else ("light" if level > LIGHT else "grey")


@dataclass(frozen=True)
class Polarity:
    """The ink polarity used for target images: the mode asked for, whether they were inverted, and why."""

    invert: str
    inverted: bool
    target_background: float
    training_background: float | None

    def as_dict(self) -> dict:
        """JSON-ready form (backgrounds rounded to 3 decimals)."""
        out = asdict(self)
        out["target_background"] = round(self.target_background, 3)
        if self.training_background is not None:
            out["training_background"] = round(self.training_background, 3)
        return out

    def line(self) -> str:
        """One line saying which polarity was chosen, e.g. for the command line's stderr or the page."""
        target = f"{tone(self.target_background)} ({self.target_background:.2f})"
        done = "inverted the target images" if self.inverted else "kept the target images as they are"
        if self.invert != "auto":
            return f"ink polarity: {done} (invert {self.invert}; target background {target})"
        training = f"{tone(self.training_background)} ({self.training_background:.2f})"
        return f"ink polarity: target background {target}, training background {training}: {done} (invert auto)"


def choose(invert: str, images: torch.Tensor, training_background: float | None) -> Polarity:
    """Decide whether to invert uint8 target images; auto inverts when one background is dark and the other light."""
    if invert not in INVERT_MODES:
        raise LearngeneError(f"invert {invert!r} is unknown: use one of {', '.join(INVERT_MODES)}")
    level = background(images)
    if invert != "auto":
        return Polarity(invert, invert == "yes", level, training_background)
    if training_background is None:
        raise LearngeneError(
            "the training images' background is unknown, so the ink polarity cannot be compared: set invert to yes "
            "or no"
        )
    pair = {tone(level), tone(training_background)}
    return Polarity(invert, pair == {"dark", "light"}, level, training_background)


def invert_images(polarity: Polarity, images: torch.Tensor) -> torch.Tensor:
    """The images with the chosen polarity (uint8, inverted as 255 - value when asked)."""
    return 255 - images if polarity.inverted else images
