"""Normalisation and light augmentation with plain torch ops (no torchvision)."""

from __future__ import annotations

import torch

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
GRAY_MEAN = (0.5,)
GRAY_STD = (0.5,)


def normalise(images: torch.Tensor, device: torch.device | str = "cpu") -> torch.Tensor:
    """uint8 (B, C, H, W) -> float32 normalised with ImageNet statistics (RGB, as the paper) or 0.5/0.5 (gray)."""
    x = images.to(device=device, dtype=torch.float32).div_(255.0)
    rgb = x.shape[1] == 3
    mean = torch.tensor(IMAGENET_MEAN if rgb else GRAY_MEAN * x.shape[1], device=x.device).view(1, -1, 1, 1)
    std = torch.tensor(IMAGENET_STD if rgb else GRAY_STD * x.shape[1], device=x.device).view(1, -1, 1, 1)
    return x.sub_(mean).div_(std)


def augment(x: torch.Tensor, generator: torch.Generator, *, pad: int = 2, flip: bool = False) -> torch.Tensor:
    """Random shift by up to `pad` pixels (zero padding, like RandomCrop) and optional horizontal flip."""
    b, c, h, w = x.shape
    if pad > 0:
        padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
        oy = torch.randint(0, 2 * pad + 1, (b,), generator=generator).to(x.device)
        ox = torch.randint(0, 2 * pad + 1, (b,), generator=generator).to(x.device)
        rows = (oy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]
        cols = (ox[:, None] + torch.arange(w, device=x.device))[:, None, None, :]
        x = padded[
            torch.arange(b, device=x.device)[:, None, None, None],
            torch.arange(c, device=x.device)[None, :, None, None],
            rows,
            cols,
        ]
    if flip:
        mask = (torch.rand(b, generator=generator) < 0.5).to(x.device)
        x = torch.where(mask[:, None, None, None], x.flip(3), x)
    return x
