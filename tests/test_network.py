"""The expandable network: its spec, shapes, parameter count, seeding and state round-trip."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from core.collective.network import PAPER_SPEC_CIFAR, ExpandableNet, NetSpec, build, load_state
from core.collective.widening import widen
from core.errors import LearngeneError

SMALL = NetSpec(
    in_channels=1, image_size=16, widths=(4, 6, 8), pool_after=(1, 3), hidden=(10, 7), num_outputs=5, dropout=0.5
)


def images(spec: NetSpec, n: int) -> torch.Tensor:
    """A fixed batch of noise images for `spec`."""
    return torch.randn(
        n, spec.in_channels, spec.image_size, spec.image_size, generator=torch.Generator().manual_seed(0)
    )


def test_layer_names_run_from_the_first_conv_to_the_last_linear() -> None:
    assert SMALL.layer_names() == ("conv1", "conv2", "conv3", "fc1", "fc2", "fc3")
    assert PAPER_SPEC_CIFAR.layer_names() == tuple(f"conv{i}" for i in range(1, 14)) + ("fc1", "fc2", "fc3")
    net = build(SMALL, 0)
    layers = net.weight_layers()
    assert tuple(layers) == SMALL.layer_names()
    assert [type(m) for m in layers.values()] == [nn.Conv2d] * 3 + [nn.Linear] * 3
    assert layers["conv2"] is net.convs["conv2"].conv and layers["fc3"] is net.fcs["fc3"]


def test_forward_features_and_embed_have_the_specs_shapes() -> None:
    net = build(SMALL, 0).eval()
    x = images(SMALL, 3)
    assert SMALL.feature_size() == 4
    assert net.features(x).shape == (3, 8 * 4 * 4)
    assert net.embed(x).shape == (3, 7)
    logits = net(x)
    assert logits.shape == (3, 5)
    assert torch.equal(logits, net.fcs["fc3"](net.embed(x)))
    assert net.widths() == {"conv1": 4, "conv2": 6, "conv3": 8}


def test_a_net_without_hidden_layers_embeds_its_conv_features() -> None:
    spec = NetSpec(in_channels=3, image_size=8, widths=(4,), pool_after=(1,), hidden=(), num_outputs=2)
    net = build(spec, 0).eval()
    x = images(spec, 2)
    assert spec.layer_names() == ("conv1", "fc1")
    assert torch.equal(net.embed(x), net.features(x))
    assert net(x).shape == (2, 2)


def test_the_paper_network_maps_cifar_images_to_64_logits() -> None:
    net = build(PAPER_SPEC_CIFAR, 0).eval()
    x = images(PAPER_SPEC_CIFAR, 2)
    assert PAPER_SPEC_CIFAR.feature_size() == 1
    assert net.features(x).shape == (2, 256)
    assert net.embed(x).shape == (2, 1024)
    assert net(x).shape == (2, 64)


def test_parameter_count_includes_bn_affine_but_not_running_statistics() -> None:
    convs = (1 * 9 * 4 + 4) + (4 * 9 * 6 + 6) + (6 * 9 * 8 + 8)
    bn = 2 * (4 + 6 + 8)
    linears = (128 * 10 + 10) + (10 * 7 + 7) + (7 * 5 + 5)
    net = build(SMALL, 0)
    assert net.num_parameters() == convs + bn + linears
    net.fcs["fc1"].weight.requires_grad_(False)
    assert net.num_parameters() == convs + bn + linears - 128 * 10


def test_the_same_seed_gives_the_same_initial_weights() -> None:
    a, b, c = build(SMALL, 7), build(SMALL, 7), build(SMALL, 8)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert not torch.equal(a.convs["conv1"].conv.weight, c.convs["conv1"].conv.weight)


def test_building_with_a_seed_leaves_the_global_random_state_alone() -> None:
    torch.manual_seed(3)
    expected = torch.rand(4)
    torch.manual_seed(3)
    build(SMALL, 1)
    assert torch.equal(torch.rand(4), expected)


def test_initial_weights_follow_pytorchs_default_ranges() -> None:
    net = build(SMALL, 0)
    conv = net.convs["conv2"].conv
    bound = 1 / (4 * 9) ** 0.5
    assert conv.weight.abs().max() <= bound and conv.weight.abs().max() > 0.8 * bound
    assert conv.bias.abs().max() <= bound
    bn = net.convs["conv2"].bn
    assert torch.equal(bn.weight, torch.ones(6)) and torch.equal(bn.running_var, torch.ones(6))
    assert torch.equal(bn.bias, torch.zeros(6)) and torch.equal(bn.running_mean, torch.zeros(6))
    assert int(bn.num_batches_tracked) == 0


def test_a_widened_net_rebuilt_from_its_state_gives_identical_outputs() -> None:
    net = build(SMALL, 0)
    g = torch.Generator().manual_seed(0)
    widen(net, "conv2", 3, generator=g)
    widen(net, "conv3", 5, generator=g)
    net.train()
    net(images(SMALL, 8))
    net.eval()
    state = {k: v.clone() for k, v in net.state_dict().items()}
    spec = NetSpec.from_dict(json.loads(json.dumps(net.spec.to_dict())))
    rebuilt = load_state(spec, state).eval()
    x = images(SMALL, 4)
    assert spec.widths == (4, 9, 13)
    assert torch.equal(rebuilt(x), net(x))
    assert int(rebuilt.convs["conv1"].bn.num_batches_tracked) == 1


def test_loading_a_state_into_the_wrong_spec_fails() -> None:
    state = build(SMALL, 0).state_dict()
    with pytest.raises(RuntimeError):
        load_state(NetSpec(**{**SMALL.to_dict(), "widths": (4, 7, 8)}), state)


def test_spec_survives_a_json_round_trip() -> None:
    text = json.dumps(PAPER_SPEC_CIFAR.to_dict())
    assert NetSpec.from_dict(json.loads(text)) == PAPER_SPEC_CIFAR
    assert json.loads(text)["widths"][4] == 128
    with pytest.raises(LearngeneError):
        NetSpec.from_dict({**PAPER_SPEC_CIFAR.to_dict(), "depth": 3})
    with pytest.raises(LearngeneError):
        NetSpec.from_dict({"in_channels": 3})


@pytest.mark.parametrize(
    "change",
    [
        {"image_size": 4, "pool_after": (1, 2, 3)},
        {"widths": ()},
        {"widths": (4, 0, 8)},
        {"pool_after": (3, 1)},
        {"pool_after": (4,)},
        {"hidden": (0,)},
        {"num_outputs": 0},
        {"dropout": 1.0},
        {"in_channels": 0},
    ],
)
def test_an_impossible_spec_is_rejected_with_a_learngene_error(change: dict) -> None:
    with pytest.raises(LearngeneError):
        NetSpec(**{**SMALL.to_dict(), **change})


def test_replacing_the_head_changes_only_the_last_layer() -> None:
    net = build(SMALL, 0).double().eval()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    net.replace_head(9, generator=torch.Generator().manual_seed(1))
    assert net.spec.num_outputs == 9 and net.fcs["fc3"].out_features == 9
    assert net.fcs["fc3"].weight.dtype == torch.float64
    assert net(images(SMALL, 2).double()).shape == (2, 9)
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in before.items() if not k.startswith("fcs.fc3."))
    with pytest.raises(LearngeneError):
        net.replace_head(0)


def test_dropout_acts_only_in_training_mode() -> None:
    net = build(SMALL, 0)
    x = images(SMALL, 4)
    net.eval()
    assert torch.equal(net(x), net(x))
    net.train()
    assert not torch.equal(net(x), net(x))


def test_a_spec_given_lists_stores_tuples() -> None:
    spec = NetSpec(in_channels=1, image_size=8, widths=[2, 3], pool_after=[2], hidden=[], num_outputs=2)
    assert spec.widths == (2, 3) and isinstance(spec.hidden, tuple)
    assert isinstance(ExpandableNet(spec), ExpandableNet)
