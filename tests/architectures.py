"""Networks built independently of the code under test: the collective's at a width, the individual model around a
block. Guard tests read parameter counts and architectures off them."""

import dataclasses

import torch

from core.collective.network import build
from core.individual.config import IndividualConfig
from core.individual.model import build_individual, fit_spec
from core.learngene.extraction import extract
from core.learngene.selection import check_block


def count(model: torch.nn.Module) -> int:
    """The model's parameter count."""
    return sum(p.numel() for p in model.parameters())


def collective_network(run, task: int, multiplier: float, way: int, seed: int = 0) -> torch.nn.Module:
    """The collective's network at `multiplier` of its widths with a `way`-output head, random from `seed`."""
    spec = run.spec(task)
    scale = lambda ws: tuple(max(1, round(w * multiplier)) for w in ws)  # noqa: E731
    return build(dataclasses.replace(spec, widths=scale(spec.widths), hidden=scale(spec.hidden), num_outputs=way), seed)


def conv_stack_network(run, task: int, way: int, seed: int = 0) -> torch.nn.Module:
    """The collective's conv layers under a `way`-output linear head on their flattened features, random from `seed`."""
    return build(dataclasses.replace(run.spec(task), hidden=(), num_outputs=way), seed)


def individual_network(
    run, task: int, layers: tuple[str, ...], config: IndividualConfig, multiplier: float, way: int, seed: int = 0
) -> torch.nn.Module:
    """The individual model around `layers` with every new layer at `multiplier`, random from `seed`."""
    gene = extract(run, check_block(run.spec(task).layer_names(), layers), task)
    spec = fit_spec(
        gene,
        way,
        front_depth=config.front_depth,
        width_multiplier=config.width_multiplier * multiplier,
        front_widths=config.front_widths,
        front_pools=config.front_pools,
        head_hidden=tuple(max(1, round(h * multiplier)) for h in config.head_hidden),
    )
    return build_individual(spec, seed)
