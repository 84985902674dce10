"""What an individual model inherits, and what each training option does to it, checked against independent sources.

Inherited tensors are compared with the run's checkpoint file read here with safetensors (not through the code that
builds the models); each option is checked on what it names: the optimiser's parameter groups, the BatchNorm
statistics, the frozen tensors. Methods run with `fit_and_test` replaced by a recorder, so the model each method
would train is seen as it starts training.
"""

import dataclasses

import pytest
import torch
import torch.nn.functional as F
from architectures import conv_stack_network
from safetensors.torch import load_file

from core.batchnorm import recalibrate_batchnorm
from core.cli.individual import individual_job
from core.cli.main import build_parser
from core.collective.runs import open_run
from core.individual import baselines, methods, stacked
from core.individual.baselines import collective_finetune_method, front_method
from core.individual.config import individual_preset
from core.individual.methods import individual_method
from core.individual.model import build_individual, fitted_spec
from core.individual.stacked import fit_and_test_stacked
from core.individual.sweep import Size, sweep_methods
from core.individual.targets import make_targets, run_imageset
from core.individual.training import fit_and_test, optimizer_factory, train
from core.learngene.extraction import extract
from core.learngene.selection import check_block

GENE = ("conv3", "conv4")
CONFIG = dict(epochs=2, batch_size=10, query=4, head_hidden=(16,), stack=1, augment=False)


@pytest.fixture(scope="module")
def setup(short_run):
    run = open_run(short_run)
    gene = extract(run, check_block(run.spec().layer_names(), GENE))
    checkpoint = load_file(short_run / "checkpoints" / f"task_{gene.task:03d}.safetensors")
    targets = make_targets(run, run_imageset(run), way=3, shot=2, query=4, tasks=2, seed=0)
    return run, gene, checkpoint, targets


def layer_tensors(checkpoint: dict, layer: str) -> dict[str, torch.Tensor]:
    """The conv + BatchNorm tensors of one collective layer in the checkpoint file, keyed as in a ConvBlock."""
    prefix = f"convs.{layer}."
    return {k.removeprefix(prefix): v for k, v in checkpoint.items() if k.startswith(prefix)}


def assert_block_is_the_checkpoints(block: dict, checkpoint: dict) -> None:
    """Every tensor of every named layer equals the checkpoint file's (weights, BatchNorm affine and statistics)."""
    for layer, module in block.items():
        state, stored = module.state_dict(), layer_tensors(checkpoint, layer)
        assert stored and state.keys() == stored.keys(), layer
        for key, tensor in stored.items():
            assert torch.equal(state[key], tensor), f"{layer}.{key}"


@pytest.fixture
def started(monkeypatch):
    """The models that methods hand to training (training itself is skipped)."""
    seen = []

    def record(model, target, config, **kwargs):
        seen.append(model)
        return 0.0

    monkeypatch.setattr(methods, "fit_and_test", record)
    monkeypatch.setattr(baselines, "fit_and_test", record)
    return seen


def test_front_inheritance_trains_the_checkpoints_front_layers(setup, started):
    run, gene, checkpoint, targets = setup
    method = front_method(run, gene, 3, individual_preset("fast", **CONFIG))
    method.run_task(targets.tasks[0], None)
    model = started[-1]
    assert tuple(model.block) == ("conv1", "conv2")
    assert_block_is_the_checkpoints(model.block, checkpoint)
    inherited = sum(
        t.numel()
        for layer in model.block
        for k, t in layer_tensors(checkpoint, layer).items()
        if k in ("conv.weight", "conv.bias", "bn.weight", "bn.bias")
    )
    assert method.inherited_params == inherited


@pytest.mark.parametrize("multiplier", [0.125, 0.5, 1.0])
def test_every_size_of_the_learngene_and_front_inheritance_starts_from_the_checkpoint(setup, started, multiplier):
    run, gene, checkpoint, targets = setup
    points = dict(
        (m.name, m) for m, _ in sweep_methods(run, gene, individual_preset("fast", **CONFIG), 3, Size(multiplier))
    )
    for name, layers in (("learngene", GENE), ("front inheritance", ("conv1", "conv2"))):
        points[name].run_task(targets.tasks[0], None)
        assert tuple(started[-1].block) == layers
        assert_block_is_the_checkpoints(started[-1].block, checkpoint)


def test_collective_fine_tuning_starts_from_every_checkpoint_conv_layer_and_classifies_like_nearest_centroids(
    setup, started
):
    run, gene, checkpoint, targets = setup
    target = targets.tasks[0]
    collective_finetune_method(run.load_net(gene.task), 3, individual_preset("fast", **CONFIG)).run_task(target, None)
    model = started[-1]
    assert_block_is_the_checkpoints(dict(model.convs.items()), checkpoint)
    assert list(model.fcs) == ["fc1"]  # the head reads the conv features: no hidden fc layer in between
    convs = {n: c for n, c in checkpoint.items() if n.startswith("convs.")}
    features = conv_stack_network(run, gene.task, 3)
    features.load_state_dict({**features.state_dict(), **convs})
    features.eval()
    with torch.no_grad():  # cosine nearest centroids on the checkpoint's conv features, computed here
        support, query = features.features(target.support), features.features(target.query)
        centroids = torch.stack([support[target.support_labels == c].mean(0) for c in range(3)])
        expected = (F.normalize(query, dim=1) @ F.normalize(centroids, dim=1).T).argmax(1)
        model.eval()
        assert torch.equal(model(target.query).argmax(1), expected)


def test_side_by_side_training_gets_the_checkpoints_block_in_every_model(setup, monkeypatch):
    run, gene, checkpoint, targets = setup
    seen = []
    monkeypatch.setattr(methods, "fit_and_test_stacked", lambda models, *a, **k: seen.extend(models) or [0.0] * 2)
    config = individual_preset("fast", **dict(CONFIG, stack=2))
    individual_method("learngene", fitted_spec(gene, 3, config), config, gene).run_group(targets.tasks, None)
    assert len(seen) == 2
    for model in seen:
        assert_block_is_the_checkpoints(model.block, checkpoint)


def model_and_data(setup, **overrides):
    """A learngene model (seed 0), the first target task, and the test config with `overrides`."""
    run, gene, _, targets = setup
    config = individual_preset("fast", **dict(CONFIG, **overrides))
    model = build_individual(fitted_spec(gene, 3, config), 0, gene)
    return model, targets.tasks[0], config


def test_inherited_parameters_get_their_own_learning_rate_and_new_ones_the_base_rate(setup):
    model, _, config = model_and_data(setup, lr=0.02, inherited_lr=0.25)
    groups = optimizer_factory(model, [model.block], config)().param_groups
    block = {id(p) for p in model.block.parameters()}
    by_lr = {g["lr"]: {id(p) for p in g["params"]} for g in groups}
    assert by_lr == {0.02: {id(p) for p in model.parameters()} - block, 0.02 * 0.25: block}


def test_training_moves_inherited_weights_by_the_inherited_factor_of_the_step(setup):
    model, target, config = model_and_data(setup, momentum=0.0, weight_decay=0.0, epochs=1, batch_size=100)
    steps = {}
    for factor in (1.0, 0.25):
        copy = build_individual(model.spec, 0, None)
        copy.load_state_dict(model.state_dict())
        train(
            copy,
            target.support,
            target.support_labels,
            dataclasses.replace(config, inherited_lr=factor),
            seed=0,
            inherited=[copy.block],
        )
        steps[factor] = {k: v - model.state_dict()[k] for k, v in copy.state_dict().items() if v.is_floating_point()}
    block_weight, front_weight = "block.conv3.conv.weight", "front.0.conv.weight"
    assert steps[1.0][block_weight].abs().max() > 0
    torch.testing.assert_close(steps[0.25][block_weight], 0.25 * steps[1.0][block_weight], rtol=1e-3, atol=1e-7)
    assert torch.equal(steps[0.25][front_weight], steps[1.0][front_weight])


def support_statistics(model, target) -> tuple[torch.Tensor, torch.Tensor]:
    """The first front layer's conv output mean and unbiased variance per channel over the support images."""
    with torch.no_grad():
        out = model.front[0].conv(target.support)
    return out.mean(dim=(0, 2, 3)), out.var(dim=(0, 2, 3), unbiased=True)


@pytest.mark.parametrize("recalibrate", [True, False])
def test_batchnorm_statistics_are_measured_on_the_support_set_unless_kept(setup, recalibrate):
    model, target, config = model_and_data(setup, recalibrate_bn=recalibrate, freeze=True)
    fit_and_test(model, target, config, inherited=[model.block])
    mean, var = support_statistics(model, target)
    bn = model.front[0].bn
    measured = torch.allclose(bn.running_mean, mean, rtol=1e-4, atol=1e-5)
    measured = measured and torch.allclose(bn.running_var, var, rtol=1e-4, atol=1e-5)
    assert measured == recalibrate
    _, _, checkpoint, _ = setup
    assert_block_is_the_checkpoints(model.block, checkpoint)  # frozen: weights and statistics kept either way


def test_without_freezing_the_inherited_batchnorm_is_measured_again_too(setup):
    model, target, config = model_and_data(setup, recalibrate_bn=True, freeze=False)
    fit_and_test(model, target, config, inherited=[model.block])
    expected = model.block["conv3"].bn.running_mean.clone()
    recalibrate_batchnorm(model, target.support)  # measuring again on the same images changes nothing
    torch.testing.assert_close(model.block["conv3"].bn.running_mean, expected)
    _, _, checkpoint, _ = setup
    assert not torch.equal(expected, layer_tensors(checkpoint, "conv3")["bn.running_mean"])


def test_freezing_keeps_every_inherited_tensor_while_the_new_layers_train(setup):
    model, target, config = model_and_data(setup, freeze=True, recalibrate_bn=False)
    front = model.front[0].conv.weight.clone()
    fit_and_test(model, target, config, inherited=[model.block])
    _, _, checkpoint, _ = setup
    assert_block_is_the_checkpoints(model.block, checkpoint)
    assert not torch.equal(front, model.front[0].conv.weight)


@pytest.mark.parametrize("freeze", [False, True])
def test_side_by_side_training_applies_the_inherited_rate_freezing_and_batchnorm_choice(setup, monkeypatch, freeze):
    _, gene, _, targets = setup
    config = individual_preset(
        "fast", **dict(CONFIG, stack=2, lr=0.02, inherited_lr=0.25, freeze=freeze, recalibrate_bn=False)
    )
    models = [build_individual(fitted_spec(gene, 3, config), t.seed, gene) for t in targets.tasks]
    made, measured = [], []

    def factory(net, inherited, config):
        make = optimizer_factory(net, inherited, config)
        made.append((net, inherited))
        return lambda: made.append(make()) or made[-1]

    monkeypatch.setattr(stacked, "optimizer_factory", factory)
    monkeypatch.setattr(stacked, "recalibrate_batchnorm", lambda *a, **k: measured.append(a))
    fit_and_test_stacked(models, targets.tasks, config, inherit=True)
    (net, inherited), optimizer = made[0], made[1]
    block = {id(p) for module in inherited for p in module.parameters()}
    assert block and not measured
    groups = {g["lr"]: {id(p) for p in g["params"]} for g in optimizer.param_groups}
    if freeze:
        assert groups == {0.02: {id(p) for p in net.parameters()} - block}
        for layer, module in zip(GENE, inherited):  # trained with the inherited layers frozen: still the originals
            assert torch.equal(module[0].weight, torch.cat([m.block[layer].conv.weight for m in models]))
            assert torch.equal(module[1].running_mean, torch.cat([m.block[layer].bn.running_mean for m in models]))
    else:
        assert groups == {0.02: {id(p) for p in net.parameters()} - block, 0.02 * 0.25: block}


def test_the_command_line_options_reach_the_config(short_run):
    parser = build_parser()
    base = ["individual", "--run-dir", str(short_run)]
    plain = individual_job(parser.parse_args(base)).config
    chosen = individual_job(parser.parse_args([*base, "--inherited-lr", "0.25", "--keep-bn", "--freeze"])).config
    assert (chosen.inherited_lr, chosen.recalibrate_bn, chosen.freeze) == (0.25, False, True)
    preset = individual_preset(plain.preset)
    assert (plain.inherited_lr, plain.recalibrate_bn, plain.freeze) == (
        preset.inherited_lr,
        preset.recalibrate_bn,
        preset.freeze,
    )
