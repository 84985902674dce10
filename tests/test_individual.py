"""Individual models: the inherited block equals the collective's, the front fits it, and freezing really freezes."""

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from core.cli.messages import line
from core.collective.runs import open_run
from core.errors import LearngeneError
from core.individual.config import individual_preset
from core.individual.model import IndividualSpec, build_individual, fit_spec
from core.individual.training import train
from core.learngene.extraction import extract
from core.learngene.gene import Learngene
from core.learngene.selection import check_block


@pytest.fixture(scope="module")
def setup(smoke_run):
    run = open_run(smoke_run)
    gene = extract(run, check_block(run.spec().layer_names(), ("conv2", "conv3")))
    return run, gene


def test_inherited_layers_equal_the_collective_checkpoint(setup):
    run, gene = setup
    net = run.load_net(gene.task)
    model = build_individual(fit_spec(gene, 5), seed=1, learngene=gene)
    for name in gene.layers:
        ours, theirs = model.block[name].state_dict(), net.convs[name].state_dict()
        assert ours.keys() == theirs.keys()
        assert all(torch.equal(ours[k], theirs[k]) for k in ours)


def test_inherited_block_gives_the_collective_block_outputs(setup):
    run, gene = setup
    net = run.load_net(gene.task).eval()
    model = build_individual(fit_spec(gene, 5), seed=1, learngene=gene).eval()
    x = torch.randn(4, gene.in_channels, gene.input_size, gene.input_size, generator=torch.Generator().manual_seed(0))
    expected = x
    with torch.no_grad():
        for name in gene.layers:
            expected = net.convs[name](expected)
            if name in gene.pools:
                expected = F.max_pool2d(expected, 2)
        torch.testing.assert_close(model.run_block(x), expected)


def test_default_front_feeds_the_block_its_channels_at_its_trained_size(setup):
    _, gene = setup
    spec = fit_spec(gene, 5)
    model = build_individual(spec, seed=0, learngene=gene)
    h = model.front_features(torch.zeros(2, gene.image_channels, gene.image_size, gene.image_size))
    assert h.shape[1:] == (gene.in_channels, gene.input_size, gene.input_size)
    assert model(torch.zeros(2, 1, gene.image_size, gene.image_size)).shape == (2, 5)


def test_front_depth_and_width_are_configurable_and_counted(setup):
    _, gene = setup
    small = fit_spec(gene, 5, width_multiplier=0.5, front_depth=3, head_hidden=(16,))
    big = fit_spec(gene, 5, width_multiplier=2.0, front_depth=3, head_hidden=(16,))
    assert len(small.front_widths) == 3 and small.front_widths[-1] == big.front_widths[-1] == gene.in_channels
    a, b = build_individual(small, 0, gene), build_individual(big, 0, gene)
    assert a.num_parameters() < b.num_parameters()
    assert a.inherited_parameters() == b.inherited_parameters() == gene.num_parameters()
    assert IndividualSpec.from_dict(small.to_dict()) == small


def test_a_front_too_shallow_to_reach_the_block_size_is_refused(smoke_run):
    run = open_run(smoke_run)
    deep = extract(run, check_block(run.spec().layer_names(), ("conv3",)))  # conv3 sits after two pools
    with pytest.raises(LearngeneError) as refused:
        fit_spec(deep, 5, front_depth=1)
    assert "use --front-depth 2 or more" in line(refused.value)


def test_scratch_has_the_same_architecture_with_random_block(setup):
    _, gene = setup
    spec = fit_spec(gene, 5)
    inherited, scratch = build_individual(spec, 3, gene), build_individual(spec, 3)
    assert scratch.num_parameters() == inherited.num_parameters()
    assert not torch.equal(scratch.block["conv2"].conv.weight, inherited.block["conv2"].conv.weight)
    assert torch.equal(scratch.front[0].conv.weight, inherited.front[0].conv.weight)


def test_same_seed_builds_the_same_model(setup):
    _, gene = setup
    a, b = build_individual(fit_spec(gene, 5), 7, gene), build_individual(fit_spec(gene, 5), 7, gene)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_freezing_keeps_inherited_weights_and_statistics_while_the_rest_trains(setup):
    _, gene = setup
    model = build_individual(fit_spec(gene, 5), 0, gene)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(20, 1, gene.image_size, gene.image_size, generator=g), torch.arange(5).repeat(4)
    config = dataclasses.replace(individual_preset("fast"), epochs=2, batch_size=10, freeze=True)
    train(model, x, y, config, seed=0, inherited=[model.block])
    after = model.state_dict()
    block = [k for k in before if k.startswith("block.")]
    assert block and all(torch.equal(before[k], after[k]) for k in block)
    assert not torch.equal(before["front.0.conv.weight"], after["front.0.conv.weight"])
    assert not torch.equal(before["front.0.bn.running_mean"], after["front.0.bn.running_mean"])


def paper_learngene():
    """A learngene shaped like the paper's conv11-conv13 (512 channels, CIFAR 32 px, four pools before it)."""
    shapes = {
        "conv.weight": (512, 512, 3, 3),
        "conv.bias": (512,),
        "bn.weight": (512,),
        "bn.bias": (512,),
        "bn.running_mean": (512,),
        "bn.running_var": (512,),
        "bn.num_batches_tracked": (),
    }
    layers = ("conv11", "conv12", "conv13")
    tensors = {f"{n}.{k}": torch.zeros(shape) for n in layers for k, shape in shapes.items()}
    return Learngene(layers, tensors, 512, 2, ("conv13",), 3, 32, "cifar100", "paper", 20)


def test_paper_preset_builds_the_papers_11_79m_model_with_7_08m_inherited():
    config = individual_preset("paper")
    spec = fit_spec(
        paper_learngene(),
        5,
        front_widths=config.front_widths,
        front_pools=config.front_pools,
        head_hidden=config.head_hidden,
    )
    model = build_individual(spec, 0, paper_learngene())
    assert spec.feature_size() == 2048
    assert round(model.num_parameters() / 1e6, 2) == 11.79 and round(model.inherited_parameters() / 1e6, 2) == 7.08
