"""Starting a new head from the support set: the last layer as a prototype classifier.

Proto-MAML's initialisation (Triantafillou et al., "Meta-Dataset", ICLR 2020): with class means mu_c of the
penultimate features f on the support set, weights 2 mu_c and biases -|mu_c|^2 make the logits
-|f - mu_c|^2 + |f|^2, so before any training the model already classifies like nearest centroids on the
features it inherited (Snell et al., NeurIPS 2017); training then adapts features and head together.
"""

from __future__ import annotations

import torch
from torch import nn

HEAD_INITS = ("random", "prototypes")


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
        layer.weight.copy_(2 * means)
        layer.bias.copy_(-(means**2).sum(1))
