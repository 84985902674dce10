"""docs/guarantees.md's promises, each checked where it can break: BatchNorm recalibration, evaluation with
no augmentation, fresh models, EWC under growth and across a resume, signed counting, atomic writes, runs root."""

import copy
import dataclasses
import io
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import SHORT, SHORT_ARGS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

import core.individual.methods
from core.collective.config import preset
from core.collective.criterion import EpochRecorder
from core.collective.ewc import EWC
from core.collective.network import NetSpec, build
from core.collective.run_folders import resolve_run
from core.collective.runs import open_run
from core.collective.training import CollectiveTrainer, initial_spec, train_collective
from core.collective.widening import widen
from core.errors import LearngeneError
from core.events import Cancelled, TaskFinished
from core.individual.config import individual_preset
from core.individual.evaluation import evaluate
from core.individual.model import build_individual, fitted_spec
from core.individual.targets import make_targets, run_imageset
from core.individual.training import fit_and_test, layout
from core.learngene.extraction import extract
from core.learngene.gene import LAYER_KEYS
from core.learngene.selection import check_block

QUICK = dict(epochs=3, batch_size=8, query=6, head_hidden=(16,), stack=1)  # one task at a time: fit_and_test


@pytest.fixture(scope="module")
def few_shot(smoke_run):
    run = open_run(smoke_run)
    gene = extract(run, check_block(run.spec().layer_names(), ("conv2", "conv3")))
    config = individual_preset("fast", **QUICK)
    targets = make_targets(run, run_imageset(run), way=3, shot=4, query=6, tasks=2, seed=0)
    return run, gene, config, targets


def trained(gene, config, target):
    """An individual model after fit_and_test on `target` (its block frozen first if the config says so)."""
    model = build_individual(fitted_spec(gene, 3, config), target.seed, gene)
    return model, fit_and_test(model, target, config, inherited=[model.block])


# ------------------------------------------------------------ individual models


def test_batchnorm_statistics_after_training_are_those_of_the_support_set(few_shot):
    _, gene, config, targets = few_shot
    target = targets.tasks[0]
    model, _ = trained(gene, config, target)
    reference = copy.deepcopy(model)
    norms = [m for m in reference.modules() if isinstance(m, nn.BatchNorm2d)]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
        m.train()
    with torch.no_grad():
        reference(layout(target.support, config))
    ours = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(ours) == len(norms) >= 4
    for a, b in zip(ours, norms):
        torch.testing.assert_close(a.running_mean, b.running_mean, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(a.running_var, b.running_var, rtol=1e-4, atol=1e-5)


def test_a_frozen_block_keeps_its_inherited_batchnorm_statistics_and_weights(few_shot):
    _, gene, config, targets = few_shot
    model, _ = trained(gene, dataclasses.replace(config, freeze=True), targets.tasks[0])
    for name in gene.layers:
        state = model.block[name].state_dict()
        for key in LAYER_KEYS:
            assert torch.equal(state[key], gene.tensors[f"{name}.{key}"]), (name, key)


def test_query_images_reach_the_model_exactly_as_given_no_augmentation_at_test_time(few_shot):
    _, gene, config, targets = few_shot
    target = targets.tasks[1]
    model = build_individual(fitted_spec(gene, 3, config), target.seed, gene)
    seen = []
    model.register_forward_pre_hook(lambda module, args: None if module.training else seen.append(args[0].clone()))
    reported = fit_and_test(model, target, config, inherited=[model.block])
    assert torch.equal(seen[-1], layout(target.query, config))
    with torch.no_grad():
        predicted = model.eval()(layout(target.query, config)).argmax(1)
    assert reported == pytest.approx(float((predicted == target.query_labels).float().mean()))


def capture_runs(monkeypatch):
    """Wrap the real fit_and_test so each call records its model and the model's state at the start of the task."""
    calls = []
    real = core.individual.methods.fit_and_test

    def recording(model, target, config, *, inherited=(), ewc=None, should_stop=None):
        calls.append({"model": model, "start": copy.deepcopy(model.state_dict()), "ewc": ewc})
        return real(model, target, config, inherited=inherited, ewc=ewc, should_stop=should_stop)

    monkeypatch.setattr(core.individual.methods, "fit_and_test", recording)
    return calls


def block_drift(call, gene) -> float:
    state = call["model"].state_dict()
    return sum(
        float((state[f"block.{n}.conv.weight"] - gene.tensors[f"{n}.conv.weight"]).abs().sum()) for n in gene.layers
    )


def test_every_target_task_starts_from_a_new_model_holding_the_inherited_weights(few_shot, monkeypatch):
    run, gene, config, targets = few_shot
    calls = capture_runs(monkeypatch)
    evaluate(run, gene, config, targets=targets)
    learngene_calls = calls[: len(targets.tasks)]
    assert len({id(c["model"]) for c in calls}) == len(calls) == 2 * len(targets.tasks)
    for call in learngene_calls:
        for name in gene.layers:
            assert torch.equal(call["start"][f"block.{name}.conv.weight"], gene.tensors[f"{name}.conv.weight"])
        assert block_drift(call, gene) > 0


# ------------------------------------------------------------ EWC in the collective model


def test_after_widening_rebase_keeps_the_penalty_at_zero_and_old_entries_still_anchored():
    spec = NetSpec(in_channels=1, image_size=16, widths=(4, 4, 8), pool_after=(1, 2, 3), hidden=(8,), num_outputs=3)
    net = build(spec, 0)
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(12, 1, 16, 16, generator=g), torch.randint(0, 3, (12,), generator=g)
    ewc = EWC(100.0)
    ewc.consolidate(net, [(x, y)])
    widen(net, "conv2", 4, generator=torch.Generator().manual_seed(1))
    before_rebase = float(ewc.penalty(net).detach())
    ewc.rebase(net)
    assert before_rebase > 1e-6 and float(ewc.penalty(net).detach()) < 1e-12
    with torch.no_grad():
        net.convs["conv3"].conv.weight[:, :4] += 0.1
    assert float(ewc.penalty(net).detach()) > 1e-6


def test_the_trainer_rebases_ewc_when_the_schedule_widens_the_network():
    config = preset("smoke", head="shared", ewc_lambda=100.0)
    net = build(initial_spec(config, 1), 0)
    g = torch.Generator().manual_seed(0)
    x, y = (
        torch.randn(12, 1, config.image_size, config.image_size, generator=g),
        torch.randint(0, 5, (12,), generator=g),
    )
    ewc = EWC(config.ewc_lambda)
    ewc.consolidate(net, [(x, y)])
    trainer = CollectiveTrainer(config, net, None, [], None, [], ewc)
    assert trainer.grow(1, torch.Generator().manual_seed(1)) == [("conv2", 4)]  # the smoke schedule widens here
    assert float(ewc.penalty(net).detach()) < 1e-12  # widened, yet the function-preserving copy costs nothing


def test_an_ewc_run_resumed_after_a_cancel_ends_with_the_uninterrupted_weights(tmp_path):
    config = preset("smoke", ewc_lambda=50.0, **SHORT)
    train_collective(config, tmp_path / "whole")
    seen = []
    with pytest.raises(Cancelled):
        train_collective(
            config,
            tmp_path / "cut",
            listeners=[seen.append],
            should_stop=lambda: any(isinstance(e, TaskFinished) for e in seen),
        )
    assert open_run(tmp_path / "cut").finished_tasks == 1
    train_collective(config, tmp_path / "cut", resume=True)
    a, b = (open_run(tmp_path / d).checkpoint_tensors(2) for d in ("whole", "cut"))
    assert any(k.startswith("ewc.anchor.") for k in a) and a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


# ------------------------------------------------------------ the criterion


def test_the_signed_count_is_the_share_of_entries_above_tau_and_the_absolute_count_includes_negatives():
    layer = nn.Linear(4, 2, bias=False)
    layer.weight.grad = torch.tensor([[1e-3, -1e-3, 2e-3, 0.0], [-5e-3, 5e-5, -1e-6, 4e-3]])
    recorder = EpochRecorder({"fc": layer}, tau=1e-4)
    recorder.observe()
    result = recorder.result()
    assert result.signed.tolist() == [3 / 8] and result.absolute.tolist() == [5 / 8]


# ------------------------------------------------------------ atomic writes


def test_every_file_of_a_run_is_written_under_a_temporary_name_and_renamed(tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    written = []
    real_open, real_os_open = io.open, os.open

    def note(path, writing: bool) -> None:
        if writing and str(path).startswith(str(run_dir)):
            written.append(Path(path).name)

    def tracing_open(file, mode="r", *args, **kwargs):
        note(file, any(c in mode for c in "wax+"))
        return real_open(file, mode, *args, **kwargs)

    def tracing_os_open(path, flags, *args, **kwargs):
        note(path, bool(flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)))
        return real_os_open(path, flags, *args, **kwargs)

    for target, name, replacement in ((io, "open", tracing_open), (os, "open", tracing_os_open)):
        monkeypatch.setattr(target, name, replacement)
    monkeypatch.setattr("builtins.open", tracing_open)
    train_collective(preset("smoke", **SHORT), run_dir)
    monkeypatch.undo()
    temporary = re.compile(
        r"\.(config\.json|manifest\.json|criterion\.npz\.pending|metrics\.jsonl\.pending|"
        r"task_\d{3}\.safetensors)\.\w+\.tmp"
    )
    assert {"criterion.npz", "metrics.jsonl"} <= {p.name for p in run_dir.iterdir()}
    assert written and all(temporary.fullmatch(n) or n == ".lock" for n in written), sorted(set(written))


KILL_MID_WRITE = """
import os, pathlib, signal, sys
import numpy as np
from core.cli.main import main

victim = sys.argv[1]
real_savez, real_write_bytes = np.savez, pathlib.Path.write_bytes
calls = []


def die_halfway(handle):
    handle.write(b"PK\\x03\\x04 the first half of a file")
    handle.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def savez(handle, **arrays):
    calls.append(1)
    if victim != "criterion" or len(calls) < 2:
        return real_savez(handle, **arrays)
    die_halfway(handle)


def write_bytes(self, data):
    if victim != "checkpoint" or "task_001.safetensors" not in self.name:
        return real_write_bytes(self, data)
    with open(self, "wb") as handle:
        die_halfway(handle)


np.savez, pathlib.Path.write_bytes = savez, write_bytes
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.parametrize(
    "victim, name", [("criterion", "criterion.npz.pending"), ("checkpoint", "checkpoints/task_001.safetensors")]
)
def test_a_kill_in_the_middle_of_a_write_leaves_no_half_file_under_its_name(short_run, tmp_path, victim, name):
    run_dir = tmp_path / "killed"
    argv = ["collective", "--preset", "smoke", *SHORT_ARGS, "--run-dir", str(run_dir), "--quiet"]
    killed = subprocess.run([sys.executable, "-c", KILL_MID_WRITE, victim, *argv], capture_output=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()[-2000:]
    assert not (run_dir / name).exists()
    run = open_run(run_dir)
    assert run.finished_tasks == 1 and run.criterion().tasks == 1
    resumed = subprocess.run([sys.executable, "-m", "core.cli", *argv, "--resume"], capture_output=True)
    assert resumed.returncode == 0, resumed.stderr.decode()[-2000:]
    a, b = (open_run(d).criterion() for d in (short_run, run_dir))
    assert np.array_equal(a.hist, b.hist)


# ------------------------------------------------------------ the runs root


@pytest.fixture(scope="module")
def maze(tmp_path_factory):
    """A runs root with runs, a symlink out of it, a symlink back up, and a folder beside it."""
    base = tmp_path_factory.mktemp("maze")
    root = base / "runs"
    (root / "good" / "inner").mkdir(parents=True)
    (base / "outside").mkdir()
    (root / "out").symlink_to(base / "outside")
    (root / "good" / "up").symlink_to(root / "..")
    (root / "loop").symlink_to(root / "loop")
    return root


PARTS = st.sampled_from(["good", "inner", "out", "up", "loop", "..", ".", "", "outside", "runs", "x" * 300, "\x00"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(parts=st.lists(PARTS, min_size=1, max_size=6), absolute=st.booleans())
def test_any_run_name_resolves_inside_the_runs_root_or_is_refused(maze, parts, absolute):
    name = ("/" if absolute else "") + "/".join(parts)
    try:
        target = resolve_run(maze, name)
    except LearngeneError as exc:
        assert "\n" not in str(exc)
        return
    assert target.resolve().is_relative_to(maze.resolve()) and target.resolve() != maze.resolve()
