"""An in-memory labelled image collection, held as uint8 so that large sets stay small."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class ImageSet:
    """Images (N, C, H, W) uint8, labels (N,) int64 in [0, num_classes), and a name per class."""

    name: str
    images: torch.Tensor
    labels: torch.Tensor
    class_names: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            raise ValueError("ImageSet.images must be a uint8 tensor of shape (N, C, H, W)")
        if self.labels.shape != (self.images.shape[0],):
            raise ValueError("ImageSet.labels must hold one label per image")

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return len(self.class_names)

    @property
    def channels(self) -> int:
        """Colour channels per image (1 for grayscale)."""
        return int(self.images.shape[1])

    @property
    def resolution(self) -> tuple[int, int]:
        """Height and width in pixels."""
        return int(self.images.shape[2]), int(self.images.shape[3])

    def indices_by_class(self) -> list[torch.Tensor]:
        """Image indices of each class, in ascending order."""
        order = torch.argsort(self.labels, stable=True)
        counts = torch.bincount(self.labels, minlength=self.num_classes).tolist()
        return list(torch.split(order, counts))

    def images_per_class(self) -> int:
        """The smallest number of images any class has."""
        return int(torch.bincount(self.labels, minlength=self.num_classes).min())
