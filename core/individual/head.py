"""The new output layer: linear or cosine, started at random or as the support set's prototype classifier.

Proto-MAML's initialisation (Triantafillou et al., "Meta-Dataset", ICLR 2020): with class means mu_c of the
penultimate features f on the support set, weights 2 mu_c and biases -|mu_c|^2 make the logits
-|f - mu_c|^2 + |f|^2, so before any training the model already classifies like nearest centroids on the
features it inherited (Snell et al., NeurIPS 2017); training then adapts features and head together. A cosine head
started at the class means classifies exactly like cosine nearest centroids before any step.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

HEAD_INITS = ("auto", "random", "prototypes")
HEADS = ("auto", "linear", "cosine")


class CosineLinear(nn.Linear):
    """Baseline++'s classifier (Chen et al., "A Closer Look at Few-shot Classification", ICLR 2019).

    Logits are `scale` times the cosine between the features and each class's weight vector, so a class is scored
    by direction alone, as cosine nearest centroids score it; no bias.
    """

    def __init__(self, weight: torch.Tensor, scale: float) -> None:
        super().__init__(weight.shape[1], weight.shape[0], bias=False, device=weight.device, dtype=weight.dtype)
        with torch.no_grad():
            self.weight.copy_(weight)
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * F.normalize(x, dim=-1) @ F.normalize(self.weight, dim=-1).T


def starts_at_prototypes(head_init: str, inherited_features: bool) -> bool:
    """Whether a new head starts as the prototype classifier: "auto" does so only on features that every layer
    before the head inherited (random layers in between give random features; docs/results.md)."""
    return head_init == "prototypes" or (head_init == "auto" and inherited_features)


def chosen_head(head: str, *, random_collective: bool = False) -> str:
    """The head a model gets: "auto" is cosine, but linear for the collective's own architecture from random weights
    (its hidden fc layers then feed a cosine head badly: glyphs, 1 shot, x1/8 to x1, 0.26-0.43 against 0.39-0.53)."""
    if head != "auto":
        return head
    return "linear" if random_collective else "cosine"


def use_cosine_head(model: nn.Module, scale: float) -> None:
    """Replace the model's output layer by a cosine classifier that starts from the same weight vectors."""
    name = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)][-1]
    parent, _, attribute = name.rpartition(".")
    old = model.get_submodule(name)
    setattr(model.get_submodule(parent), attribute, CosineLinear(old.weight.detach(), scale))


def last_linear(model: nn.Module) -> nn.Linear:
    """The model's output layer (its last nn.Linear)."""
    return [m for m in model.modules() if isinstance(m, nn.Linear)][-1]


def penultimate(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The inputs of the model's output layer for images `x` (eval mode, no gradients)."""
    seen: list[torch.Tensor] = []
    hook = last_linear(model).register_forward_hook(lambda module, inputs, output: seen.append(inputs[0]))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(x)
    finally:
        hook.remove()
        model.train(was_training)
    return seen[0]


def prototype_head(model: nn.Module, x: torch.Tensor, labels: torch.Tensor) -> None:
    """Set the output layer to the prototype classifier of the support set (x, labels 0..way-1)."""
    features = penultimate(model, x)
    layer = last_linear(model)
    means = torch.stack([features[labels == c].mean(0) for c in range(layer.out_features)])
    with torch.no_grad():
        if isinstance(layer, CosineLinear):
            layer.weight.copy_(means)
            return
        layer.weight.copy_(2 * means)
        layer.bias.copy_(-(means**2).sum(1))
