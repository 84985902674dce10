"""Weight selection takes the same evenly spaced channels in every tensor of a layer (Xu et al., ICLR 2024).

Every expected tensor is cut here from the larger network with the index rule of core.individual.weight_selection's
docstring (floor(i * count / keep)), written out in plain Python, never with the module's own helpers.
"""

import dataclasses

import pytest
import torch

from core.collective.network import NetSpec, build
from core.errors import LearngeneError
from core.individual.weight_selection import evenly_spaced, select_weights

BASE = NetSpec(in_channels=1, image_size=16, widths=(8, 12, 16), pool_after=(1, 3), hidden=(20, 14), num_outputs=7)
SMALL = NetSpec(in_channels=1, image_size=16, widths=(4, 6, 8), pool_after=(1, 3), hidden=(10, 7), num_outputs=3)


def rule(count: int, keep: int) -> list[int]:
    """The documented selection: keep entries floor(i * count / keep), i = 0..keep-1."""
    return [i * count // keep for i in range(keep)]


@pytest.fixture
def nets():
    """A base network whose every BatchNorm tensor differs from channel to channel, and its selected copy (built per
    test, so that `make mutation` sees every test call select_weights)."""
    base = build(BASE, seed=3)
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for block in base.convs.values():
            for key in ("weight", "bias", "running_mean"):
                getattr(block.bn, key).copy_(torch.randn(block.bn.num_features, generator=g))
            block.bn.running_var.copy_(torch.rand(block.bn.num_features, generator=g) + 0.5)
            block.bn.num_batches_tracked.fill_(17)
    return base, select_weights(base, SMALL, seed=9)


def test_the_index_rule_is_floor_of_i_times_count_over_keep():
    for count, keep in ((8, 4), (12, 6), (16, 8), (7, 3), (10, 10), (9, 1)):
        assert evenly_spaced(count, keep).tolist() == rule(count, keep)


def test_a_network_of_another_depth_or_a_wider_one_is_refused_in_words():
    base = build(BASE, seed=3)
    with pytest.raises(LearngeneError, match="same depth as the collective model"):
        select_weights(base, dataclasses.replace(SMALL, hidden=(10,)), seed=0)
    with pytest.raises(LearngeneError, match="same depth as the collective model"):
        select_weights(base, dataclasses.replace(SMALL, widths=(4, 6, 8, 8), pool_after=(1,)), seed=0)
    with pytest.raises(LearngeneError, match="cannot select 9 of 8 channels: choose a width multiplier in"):
        select_weights(base, dataclasses.replace(SMALL, widths=(9, 6, 8)), seed=0)


def test_each_conv_layer_keeps_its_selected_outputs_of_the_previous_layers_selected_outputs(nets):
    base, small = nets
    previous = [0]
    for name, block in small.convs.items():
        source = base.convs[name]
        keep = rule(source.conv.out_channels, block.conv.out_channels)
        expected = torch.stack([torch.stack([source.conv.weight[o, i] for i in previous]) for o in keep])
        assert torch.equal(block.conv.weight, expected), name
        assert torch.equal(block.conv.bias, torch.stack([source.conv.bias[o] for o in keep])), name
        previous = keep


@pytest.mark.parametrize("key", ["weight", "bias", "running_mean", "running_var"])
def test_batchnorm_keeps_the_affine_parameters_and_statistics_of_the_same_selected_channels(nets, key):
    base, small = nets
    for name, block in small.convs.items():
        source = getattr(base.convs[name].bn, key).detach()
        keep = rule(base.convs[name].conv.out_channels, block.conv.out_channels)
        assert getattr(block.bn, key).detach().tolist() == [float(source[o]) for o in keep], name
        assert int(block.bn.num_batches_tracked) == 17


def test_fc1_reads_the_selected_last_conv_channels_at_every_spatial_position(nets):
    base, small = nets
    side = BASE.image_size // 2 ** len(BASE.pool_after)
    channels = rule(BASE.widths[-1], SMALL.widths[-1])
    units = rule(BASE.hidden[0], SMALL.hidden[0])
    source = base.fcs["fc1"].weight
    columns = [c * side * side + p for c in channels for p in range(side * side)]  # flatten is channel-major
    expected = torch.stack([torch.stack([source[u, col] for col in columns]) for u in units])
    assert torch.equal(small.fcs["fc1"].weight, expected)
    assert torch.equal(small.fcs["fc1"].bias, torch.stack([base.fcs["fc1"].bias[u] for u in units]))


def test_each_hidden_layer_keeps_its_selected_units_of_the_previous_hidden_layers_selected_units(nets):
    base, small = nets
    inputs, units = rule(BASE.hidden[0], SMALL.hidden[0]), rule(BASE.hidden[1], SMALL.hidden[1])
    source = base.fcs["fc2"]
    expected = torch.stack([torch.stack([source.weight[u, i] for i in inputs]) for u in units])
    assert torch.equal(small.fcs["fc2"].weight, expected)
    assert torch.equal(small.fcs["fc2"].bias, torch.stack([source.bias[u] for u in units]))


def test_the_head_is_new_from_the_seed_and_the_selected_network_computes_the_selected_units(nets):
    base, small = nets
    fresh = build(SMALL, seed=9)
    assert torch.equal(small.fcs["fc3"].weight, fresh.fcs["fc3"].weight)
    assert torch.equal(small.fcs["fc3"].bias, fresh.fcs["fc3"].bias)
    x = torch.randn(5, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        big, narrow = base.eval().activations(x), small.eval().activations(x)
    # conv1 sees every input channel, so its selected channels compute exactly what the base's channels compute
    keep = rule(BASE.widths[0], SMALL.widths[0])
    torch.testing.assert_close(narrow["conv1"], big["conv1"][:, keep])
