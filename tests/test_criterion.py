"""The gradient criterion: exact counts at tau, histograms exact on bin edges, and a log that survives disk."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from core.collective.criterion import CriterionLog, EpochRecorder
from core.collective.histogram import BIN_EDGES, NBINS, NEGATIVE, POSITIVE, fraction_from_hist
from core.errors import LearngeneError

EDGE_TAUS = [float(BIN_EDGES[k]) for k in (0, 1, 17, 20, 33, 44, 59, 60)]
# One entry weighs 1 / (batches * n) >= 1e-5 here; float rounding of summed fractions stays below 1e-13.
ONE_ENTRY_FAR_BELOW = 1e-12


def wild_gradient(gen: torch.Generator, n: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Magnitudes over 1e-16..1e2 of both signs, with zeros, -0.0 and values exactly on and beside every edge."""
    mag = 10.0 ** (torch.rand(n, generator=gen, dtype=torch.float64) * 18 - 16)
    sign = torch.where(torch.rand(n, generator=gen) < 0.5, -1.0, 1.0).double()
    g = (sign * mag).to(dtype)
    edges = torch.tensor(BIN_EDGES, dtype=dtype)
    up, down = torch.tensor(np.inf, dtype=dtype), torch.zeros((), dtype=dtype)
    special = torch.cat([edges, torch.nextafter(edges, up), torch.nextafter(edges, down)])
    special = torch.cat([special, -special, torch.zeros(20, dtype=dtype), -torch.zeros(20, dtype=dtype)])
    special = special[torch.randperm(len(special), generator=gen)][: n // 2]
    g[torch.randperm(n, generator=gen)[: len(special)]] = special
    return g


def layers_of(*sizes: int, dtype: torch.dtype = torch.float32) -> dict[str, nn.Module]:
    """Linear layers whose weights have the given numbers of entries."""
    return {f"l{i}": nn.Linear(1, n, bias=False).to(dtype) for i, n in enumerate(sizes)}


def record(layers: dict[str, nn.Module], grads: list[list[torch.Tensor | None]], tau: float) -> EpochRecorder:
    """Feed batches of gradients (one list per batch, one entry per layer) to a recorder."""
    recorder = EpochRecorder(layers, tau)
    for batch in grads:
        for module, g in zip(layers.values(), batch):
            module.weight.grad = None if g is None else g.reshape(module.weight.shape)
        recorder.observe()
    return recorder


def direct(grads: list[list[torch.Tensor]], layer: int, tau: float, absolute: bool) -> float:
    """Mean over batches of the fraction of entries above tau, counted straight from the tensors."""
    counts = [int(((b[layer].abs() if absolute else b[layer]) > tau).sum()) for b in grads]
    return sum(counts) / (len(grads) * grads[0][layer].numel())


@pytest.fixture(scope="module")
def wild_batches() -> tuple[dict[str, nn.Module], list[list[torch.Tensor]]]:
    gen = torch.Generator().manual_seed(0)
    layers = {**layers_of(3000, 700), **{"l2": nn.Linear(1, 1500, bias=False).double()}}
    dtypes = [torch.float32, torch.float32, torch.float64]
    grads = [[wild_gradient(gen, m.weight.numel(), dt) for m, dt in zip(layers.values(), dtypes)] for _ in range(4)]
    return layers, grads


@pytest.mark.parametrize("absolute", [False, True])
def test_histogram_derived_fractions_equal_directly_counted_ones_at_bin_edges(wild_batches, absolute):
    layers, grads = wild_batches
    ec = record(layers, grads, 5e-10).result()
    for tau in EDGE_TAUS:
        got = fraction_from_hist(ec.hist, tau, absolute=absolute)
        want = [direct(grads, layer, tau, absolute) for layer in range(len(layers))]
        np.testing.assert_allclose(got, want, rtol=0, atol=ONE_ENTRY_FAR_BELOW)


@pytest.mark.parametrize("tau", [5e-10, 5e-4, 0.0, float(BIN_EDGES[30]), 1e-3 * (1 + 1e-9), 1e-3 * (1 + 1e-4)])
def test_recorded_fractions_equal_direct_counts_with_the_configured_tau(tau):
    gen = torch.Generator().manual_seed(1)
    layers = layers_of(2000, 50)
    grads = []
    for _ in range(3):
        batch = [wild_gradient(gen, m.weight.numel()) for m in layers.values()]
        at = torch.tensor([tau, -tau], dtype=torch.float32)
        batch[0][:6] = torch.cat([at, torch.nextafter(at, torch.tensor(0.0)), torch.nextafter(at, at * 2)])
        grads.append(batch)
    ec = record(layers, grads, tau).result()
    assert ec.signed.tolist() == [direct(grads, i, tau, False) for i in range(2)]
    assert ec.absolute.tolist() == [direct(grads, i, tau, True) for i in range(2)]


def test_fractions_lie_in_the_unit_interval_and_signed_never_exceeds_absolute(wild_batches):
    layers, grads = wild_batches
    ec = record(layers, grads, 1e-6).result()
    taus = np.logspace(-14, 1, 301)
    signed = fraction_from_hist(ec.hist, taus, absolute=False)
    absolute = fraction_from_hist(ec.hist, taus, absolute=True)
    for s, a in ((ec.signed, ec.absolute), (signed, absolute)):
        assert np.all((0 <= s) & (s <= a) & (a <= 1))
    np.testing.assert_allclose(ec.hist.sum(axis=(1, 2)), 1.0, rtol=1e-12)
    assert np.all(ec.hist[:, POSITIVE, 0] == 0)


def test_interpolation_between_edges_is_monotone_non_increasing_in_tau(wild_batches):
    layers, grads = wild_batches
    ec = record(layers, grads, 1e-6).result()
    taus = np.unique(np.concatenate([np.logspace(-14, 1, 4001), BIN_EDGES]))
    for absolute in (False, True):
        f = fraction_from_hist(ec.hist, taus, absolute=absolute)
        assert np.all(np.diff(f, axis=-1) <= 1e-15)
        assert np.any(np.diff(f, axis=-1) < -1e-6)


def test_fraction_from_hist_refuses_tau_outside_the_bins():
    hist = np.zeros((2, NBINS))
    for tau in (1e-15, 11.0, np.array([1e-3, 20.0])):
        with pytest.raises(LearngeneError, match="outside"):
            fraction_from_hist(hist, tau, absolute=False)


def test_observe_reads_the_weight_gradient_of_a_real_conv_after_backward():
    torch.manual_seed(0)
    conv, fc = nn.Conv2d(3, 8, 3), nn.Linear(8 * 6 * 6, 5)
    recorder = EpochRecorder({"conv": conv, "fc": fc}, 1e-4)
    grads, norms = [], []
    for _ in range(2):
        x, y = torch.randn(4, 3, 8, 8), torch.randint(0, 5, (4,))
        conv.zero_grad(set_to_none=True)
        fc.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(fc(torch.relu(conv(x)).flatten(1)), y).backward()
        recorder.observe()
        grads.append([conv.weight.grad.clone(), fc.weight.grad.clone()])
        norms.append([float(g.norm()) for g in grads[-1]])
    ec = recorder.result()
    assert ec.layer_names == ("conv", "fc") and ec.batches == 2
    assert ec.signed.tolist() == [direct(grads, i, 1e-4, False) for i in range(2)]
    assert ec.absolute.tolist() == [direct(grads, i, 1e-4, True) for i in range(2)]
    assert 0 < ec.signed[0] < ec.absolute[0]
    np.testing.assert_allclose(ec.grad_norm, np.mean(norms, axis=0), rtol=1e-6)


def test_channels_last_gradients_count_like_contiguous_ones():
    gen = torch.Generator().manual_seed(2)
    g = wild_gradient(gen, 16 * 8 * 3 * 3).reshape(16, 8, 3, 3)
    plain, permuted = nn.Conv2d(8, 16, 3), nn.Conv2d(8, 16, 3).to(memory_format=torch.channels_last)
    plain.weight.grad = g.clone()
    permuted.weight.grad = g.contiguous(memory_format=torch.channels_last)
    assert not permuted.weight.grad.is_contiguous()
    results = []
    for module in (plain, permuted):
        recorder = EpochRecorder({"conv": module}, 5e-10)
        recorder.observe()
        results.append(recorder.result())
    np.testing.assert_array_equal(results[0].hist, results[1].hist)
    assert results[0].signed == results[1].signed and results[0].absolute == results[1].absolute


def test_a_layer_without_gradient_counts_as_an_all_zero_gradient():
    gen = torch.Generator().manual_seed(3)
    layers = layers_of(100, 100)
    g = wild_gradient(gen, 100)
    ec = record(layers, [[None, g], [None, None]], 1e-8).result()
    assert ec.signed[0] == 0 and ec.absolute[0] == 0 and ec.grad_norm[0] == 0
    assert ec.hist[0, NEGATIVE, 0] == 1 and ec.hist[0].sum() == 1
    assert ec.signed[1] == pytest.approx(direct([[g]], 0, 1e-8, False) / 2)
    assert ec.hist[1, NEGATIVE, 0] == pytest.approx(0.5 + float((g == 0).sum()) / 200)
    assert ec.grad_norm[1] == pytest.approx(float(g.norm()) / 2, rel=1e-6)


def test_recorder_rejects_an_empty_epoch_a_bad_tau_and_a_layer_resized_mid_epoch():
    layers = layers_of(10)
    with pytest.raises(LearngeneError, match="no batch"):
        EpochRecorder(layers, 1e-3).result()
    with pytest.raises(LearngeneError, match="tau"):
        EpochRecorder(layers, -1.0)
    recorder = EpochRecorder(layers, 1e-3)
    layers["l0"].weight = nn.Parameter(torch.zeros(20, 1))
    with pytest.raises(LearngeneError, match="changed size"):
        recorder.observe()


def sample_log(tasks: int = 3, epochs: int = 2) -> CriterionLog:
    """A log recorded from random gradients, leaving the last epoch of the last task unrecorded."""
    gen = torch.Generator().manual_seed(4)
    layers = layers_of(300, 40)
    log = CriterionLog.empty(tuple(layers), 5e-10, epochs)
    for t in range(tasks):
        for e in range(epochs - (t == tasks - 1)):
            grads = [[wild_gradient(gen, m.weight.numel()) * (t + 1) for m in layers.values()] for _ in range(2)]
            log.record(t, e, record(layers, grads, 5e-10).result())
    return log


def test_record_grows_tasks_and_truncate_keeps_the_first_ones():
    log = sample_log()
    assert log.signed.shape == (3, 2, 2) and log.hist.shape == (3, 2, 2, 2, NBINS) and log.hist.dtype == np.float32
    assert log.recorded.tolist() == [[True, True], [True, True], [True, False]]
    assert np.isnan(log.signed[2, 1]).all() and not np.isnan(log.signed[:2]).any()
    first_two = log.signed[:2].copy()
    log.truncate(2)
    assert log.recorded.shape == (2, 2)
    np.testing.assert_array_equal(log.signed, first_two)


def test_per_task_is_the_mean_over_recorded_epochs():
    log = sample_log()
    for tau, absolute in ((None, False), (None, True), (1e-6, False), (BIN_EDGES[20], True)):
        per_epoch = log.per_epoch(tau, absolute=absolute)
        per_task = log.per_task(tau, absolute=absolute)
        np.testing.assert_allclose(per_task[:2], per_epoch[:2].mean(axis=1))
        np.testing.assert_allclose(per_task[2], per_epoch[2, 0])
    np.testing.assert_array_equal(log.per_epoch(), log.signed)
    assert np.isnan(log.per_epoch(1e-6)[2, 1]).all()
    assert np.isnan(CriterionLog.empty(("a",), 1e-3, 2, tasks=1).per_task()).all()
    assert np.nanmax(log.per_task(BIN_EDGES[0], absolute=True)) <= 1.0  # float32 histograms stay fractions


def test_an_array_of_taus_gives_one_per_task_map_per_tau():
    log = sample_log()
    taus = np.array([[1e-6, 1e-3], [BIN_EDGES[20], 0.5]])
    for absolute in (False, True):
        maps = log.per_task(taus, absolute=absolute)
        assert maps.shape == log.per_task().shape + taus.shape
        for index in np.ndindex(taus.shape):
            np.testing.assert_array_equal(maps[(...,) + index], log.per_task(float(taus[index]), absolute=absolute))


def test_save_load_round_trip_is_identical(tmp_path):
    log = sample_log()
    path = tmp_path / "criterion.npz"
    log.save(path)
    back = CriterionLog.load(path)
    assert (back.layer_names, back.tau, back.epochs) == (log.layer_names, log.tau, log.epochs)
    for name in ("signed", "absolute", "hist", "grad_norm", "recorded"):
        np.testing.assert_array_equal(getattr(back, name), getattr(log, name))
        assert getattr(back, name).dtype == getattr(log, name).dtype
    with np.load(path, allow_pickle=False) as data:
        assert data["layer_names"].dtype.kind == "U"
    assert [p.name for p in tmp_path.iterdir()] == ["criterion.npz"]


def test_a_truncated_or_corrupt_file_raises_an_error_naming_the_file(tmp_path):
    good = tmp_path / "good.npz"
    sample_log().save(good)
    data = good.read_bytes()
    for i, cut in enumerate((0, 10, 200, len(data) // 2, len(data) - 30, len(data) - 1)):
        bad = tmp_path / f"cut{i}.npz"
        bad.write_bytes(data[:cut])
        with pytest.raises(LearngeneError, match=f"cut{i}.npz"):
            CriterionLog.load(bad)
    with pytest.raises(LearngeneError, match="missing.npz"):
        CriterionLog.load(tmp_path / "missing.npz")


def test_shapes_that_do_not_fit_together_raise_an_error_naming_the_file(tmp_path):
    good = tmp_path / "good.npz"
    sample_log().save(good)
    with np.load(good) as data:
        arrays = dict(data)
    wrong = {"hist": arrays["hist"][:, :, :1], "recorded": arrays["recorded"][:2], "layer_names": np.array(["a"])}
    for key, value in wrong.items():
        bad = tmp_path / f"bad_{key}.npz"
        np.savez(bad, **{**arrays, key: value})
        with pytest.raises(LearngeneError, match=f"bad_{key}.npz"):
            CriterionLog.load(bad)


def test_binning_in_pieces_of_any_size_gives_the_same_counts(wild_batches, monkeypatch):
    import core.collective.histogram

    layers = {**layers_of(40, 3000, 90, 5), **wild_batches[0]}
    gen = torch.Generator().manual_seed(5)
    batches = [[wild_gradient(gen, m.weight.numel(), m.weight.dtype) for m in layers.values()]]
    results = []
    for piece in (7, 10**7):
        monkeypatch.setattr(core.collective.histogram, "_PIECE", piece)
        results.append(record(layers, batches, 1e-7).result())
    np.testing.assert_array_equal(results[0].hist, results[1].hist)
    np.testing.assert_array_equal(results[0].signed, results[1].signed)
    np.testing.assert_allclose(results[0].grad_norm, results[1].grad_norm, rtol=1e-6)


def test_the_accelerator_counting_path_counts_like_bincount(wild_batches, monkeypatch):
    import core.collective.histogram

    layers, grads = wild_batches
    results = []
    for use_bincount in (True, False):
        monkeypatch.setattr(
            core.collective.histogram, "counts_with_bincount", lambda device, use_bincount=use_bincount: use_bincount
        )
        results.append(record(layers, grads, 1e-7).result())
    np.testing.assert_array_equal(results[0].hist, results[1].hist)
    np.testing.assert_array_equal(results[0].absolute, results[1].absolute)
