"""The batched launcher (`hydra/launcher=batched`): a sweep trained as one run of stacked members writes, job by
job, the records the basic launcher writes, checked against the basic launcher's own sweep of the same jobs."""

from __future__ import annotations

import csv
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import REPO, compose_config, continue_cut_sweep, read_json, run_command, train_command, wait_for

from linreg.batched_launch import batch_key, differing_keys

SWEEP = ("lr=0.01,0.15", "iters=60,150", "seed=1,2", "optimizer.momentum=0,0.5")  # all four batched keys vary
# The numbers a member must share with its own run (1e-6 relative); the rest (timings, command line) may differ.
COMPARED = (
    "status", "steps", "diverged_at_step", "weight", "bias", "train_loss", "val_mse", "val_mae", "val_r2", "test_mse",
    "test_mae", "test_r2", "train_mse", "excess_mse", "parameter_distance", "predictions", "predictions_before",
    "val_curve", "stability_limit", "stop_reason",
)  # fmt: skip


def _sweep(cwd: Path, *overrides: str) -> tuple[str, Path]:
    cwd.mkdir()
    done = run_command(["scripts/train.py", "-m", *overrides], cwd=cwd, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    (sweep_dir,) = cwd.glob("outputs/multirun/*/*")
    return done.stdout, sweep_dir


def _records(sweep_dir: Path) -> dict[str, dict[str, Any]]:
    return {path.parent.name: json.loads(path.read_text()) for path in sweep_dir.glob("*/results.json")}


def _assert_close(basic: Any, batched: Any, where: str) -> None:
    if isinstance(basic, list):
        assert isinstance(batched, list) and len(batched) == len(basic), where
        for a, b in zip(basic, batched, strict=True):
            _assert_close(a, b, where)
    elif isinstance(basic, float) and isinstance(batched, float):
        assert batched == pytest.approx(basic, rel=1e-6, abs=0), where
    else:
        assert batched == basic, where


def _events(folder: Path) -> dict[str, list[tuple[int, Any]]]:
    """What the job's TensorBoard files hold, tag by tag: (step, value) of each scalar, (step, PNG size) of each
    picture, the HPARAMS plugin's data; in the order written."""
    from google.protobuf.json_format import MessageToDict
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData
    from tensorboard.util.tensor_util import make_ndarray

    tags: dict[str, list[tuple[int, Any]]] = {}
    for path in sorted(folder.glob("events.out.tfevents.*")):
        for event in EventFileLoader(str(path)).Load():
            for value in event.summary.value:
                strings = value.tensor.string_val  # a picture: width, height, PNG
                held = len(strings[2]) if strings else make_ndarray(value.tensor).tolist()
                if value.metadata.plugin_data.plugin_name == "hparams":  # read: its maps have no fixed order
                    held = MessageToDict(HParamsPluginData.FromString(value.metadata.plugin_data.content))
                tags.setdefault(value.tag, []).append((event.step, held))
    return tags


def _assert_same_records(basic_dir: Path, batched_dir: Path) -> dict[str, dict[str, Any]]:
    basic, batched = _records(basic_dir), _records(batched_dir)
    assert sorted(batched) == sorted(basic)
    for job, record in basic.items():
        assert set(batched[job]) == set(record), job
        for key in COMPARED:
            _assert_close(record.get(key), batched[job].get(key), f"{job}: {key}")
        folder = batched_dir / job
        for made in ("checkpoints/last.ckpt", "fit.png", ".hydra/config.yaml", "hparams.yaml"):
            assert (folder / made).is_file(), f"{job}: {made}"
        basic_events, batched_events = _events(basic_dir / job), _events(folder)
        assert batched_events.keys() == basic_events.keys(), job
        for tag, written in basic_events.items():  # the curves, pictures and hyperparameters of its own run
            assert [step for step, _ in batched_events[tag]] == [step for step, _ in written], f"{job}: {tag}"
            _assert_close([held for _, held in written], [held for _, held in batched_events[tag]], f"{job}: {tag}")
    return batched


def _summary_rows(sweep_dir: Path) -> list[dict[str, str]]:
    with (sweep_dir / "summary.csv").open() as file:
        return [{k: v for k, v in row.items() if k != "wall_s"} for row in csv.DictReader(file)]


@pytest.mark.e2e
@pytest.mark.slow
def test_a_batched_sweep_writes_the_basic_sweeps_records_with_a_diverged_member(tmp_path: Path) -> None:
    _, basic_dir = _sweep(tmp_path / "basic", *SWEEP)
    printed, batched_dir = _sweep(tmp_path / "batched", *SWEEP, "hydra/launcher=batched")
    assert "batched launcher: 16 jobs, 1 batched run(s) of 16 job(s)" in printed
    records = _assert_same_records(basic_dir, batched_dir)
    statuses = {job: record["status"] for job, record in records.items()}
    diverged = [job for job, status in statuses.items() if status == "diverged"]
    # lr 0.15 is above the notebook data's stability limit 0.1198 without momentum (below it with 0.5): the
    # 150-step members diverge while the others, in the same run, finish
    assert diverged and all("lr=0.15,optimizer.momentum=0," in job and "iters=150" in job for job in diverged)
    assert all(status == "ok" for job, status in statuses.items() if job not in diverged)
    assert _summary_rows(batched_dir) == _summary_rows(basic_dir)


@pytest.mark.e2e
@pytest.mark.slow
def test_jobs_on_different_data_run_as_two_batched_groups(tmp_path: Path) -> None:
    sweep = ("data=seed,synthetic", "lr=0.01,0.05", "iters=80")
    _, basic_dir = _sweep(tmp_path / "basic", *sweep)
    printed, batched_dir = _sweep(tmp_path / "batched", *sweep, "hydra/launcher=batched")
    assert "2 batched run(s) of 2 + 2 job(s), apart because they differ in data" in printed
    records = _assert_same_records(basic_dir, batched_dir)
    assert {record["data"] for record in records.values()} == {"seed", "synthetic"}


def test_jobs_group_by_what_they_share_and_not_by_what_a_member_holds() -> None:
    def key(*overrides: str) -> str | None:
        from linreg.resume import run_config

        return batch_key(run_config(compose_config(*overrides)))

    same = key("lr=0.01", "iters=10", "seed=1", "optimizer.momentum=0.5", "optimizer.weight_decay=0.1")
    assert same == key("lr=0.2", "iters=500", "seed=7")
    assert key("data=synthetic") != same
    assert differing_keys([same, key("data=synthetic")]) == ["data"]
    # mini-batches shuffled by the seed are different batches: not one group; in order, they are
    assert key("data.batch_size=2", "seed=1") != key("data.batch_size=2", "seed=2")
    assert key("data.batch_size=2", "data.shuffle=false", "seed=1") == key("data.batch_size=2", "data.shuffle=false")
    assert key("model=mlp") is None  # not a stack of linear members: run alone
    assert (
        key("+callbacks.stop._target_=lightning.pytorch.callbacks.EarlyStopping", "+callbacks.stop.monitor=val/mse")
        is None
    )


@pytest.mark.parametrize("optimizer_class", [torch.optim.SGD, torch.optim.Adam])  # stacked, and groups
def test_a_members_gradient_is_that_of_its_own_loss_and_a_stopped_member_does_not_move(optimizer_class: type) -> None:
    from linreg.batched import StackedLinear

    torch.manual_seed(0)
    members = [torch.nn.Linear(2, 1) for _ in range(3)]
    sgd = optimizer_class is torch.optim.SGD
    options = [{"lr": 0.1, **({"momentum": 0.9} if sgd else {})}, {"lr": 0.2}, {"lr": 1e30}]
    stacked = StackedLinear(members, optimizer_class, options)
    assert stacked.stacked == sgd
    x, y = torch.randn(8, 2), torch.randn(8, 1)
    stacked.training_step((x, y), 0).backward()
    for k, member in enumerate(members):
        torch.nn.functional.mse_loss(member(x), y).backward()
        grads = (
            [p.grad[k] for p in (stacked.weight, stacked.bias)]
            if sgd
            else [stacked.weights[k].grad, stacked.biases[k].grad]
        )
        assert torch.allclose(grads[0], member.weight.grad, rtol=1e-6)
        assert torch.allclose(grads[1], member.bias.grad, rtol=1e-6)
    optimizer = stacked.configure_optimizers()
    optimizer.step()  # member 2's enormous lr: its loss is no longer finite
    stacked.active[2] = False
    before = [p.detach().clone() for p in stacked.member_parameters(0)]
    stacked.active[0] = False  # stopped at its iters, with momentum left in its buffer
    optimizer.zero_grad()
    loss = stacked.training_step((x, y), 1)
    assert not math.isfinite(float(stacked.losses[2].detach())) and math.isfinite(float(loss.detach()))
    loss.backward()
    stacked.on_after_backward()
    optimizer.step()
    assert all(torch.equal(p, q) for p, q in zip(before, stacked.member_parameters(0), strict=True))


def test_stacked_sgd_takes_each_members_steps_as_its_own_sgd_does() -> None:
    from linreg.batched import StackedSGD

    options = [
        {"lr": 0.05}, {"lr": 0.1, "momentum": 0.9}, {"lr": 0.02, "momentum": 0.5, "nesterov": True},
        {"lr": 0.03, "momentum": 0.8, "dampening": 0.3, "weight_decay": 0.1}, {"lr": 0.04, "weight_decay": 0.5},
    ]  # fmt: skip
    torch.manual_seed(1)
    x, y = torch.randn(16, 3), torch.randn(16, 2)
    members = [torch.nn.Linear(3, 2) for _ in options]
    own = [torch.optim.SGD(member.parameters(), **option) for member, option in zip(members, options, strict=True)]
    weight = torch.nn.Parameter(torch.stack([m.weight.detach().clone() for m in members]))
    bias = torch.nn.Parameter(torch.stack([m.bias.detach().clone() for m in members]))
    active = torch.ones(len(members), dtype=torch.bool)
    stacked = StackedSGD([weight, bias], options, active)
    for step in range(60):
        if step == 30:
            active[1] = False  # member 1 stops: its own run stops stepping
        stacked.zero_grad()
        predictions = torch.matmul(x, weight.transpose(1, 2)) + bias.unsqueeze(1)
        ((predictions - y) ** 2).mean(dim=(1, 2)).sum().backward()
        stacked.step()
        for k, (member, optimizer) in enumerate(zip(members, own, strict=True)):
            if active[k]:
                optimizer.zero_grad()
                torch.nn.functional.mse_loss(member(x), y).backward()
                optimizer.step()
    for k, (member, optimizer) in enumerate(zip(members, own, strict=True)):
        assert torch.equal(weight[k], member.weight), k  # the same roundings: equal
        assert torch.equal(bias[k], member.bias), k
        theirs, ours = optimizer.state_dict(), stacked.member_state_dict(k)
        assert ours["param_groups"] == theirs["param_groups"], k
        assert ours["state"].keys() == theirs["state"].keys(), k
        for i, state in theirs["state"].items():
            assert torch.allclose(ours["state"][i]["momentum_buffer"], state["momentum_buffer"], rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("outputs", [1, 3])
def test_every_members_scores_at_once_equal_its_own_runs_metrics(outputs: int) -> None:
    from torchmetrics import MeanAbsoluteError, MeanSquaredError
    from torchmetrics.regression import R2Score

    from linreg.batched import StackedLinear, member_scores
    from linreg.standardization import Standardization

    torch.manual_seed(2)
    members = [torch.nn.Linear(4, outputs) for _ in range(5)]
    stacked = StackedLinear(members, torch.optim.SGD, [{"lr": 0.1}] * len(members))
    x, y = torch.randn(40, 4), torch.randn(40, outputs)
    units = Standardization.of(torch.randn(40, 4), 5 + 3 * torch.randn(40, outputs))  # scores in the data's units
    scores = member_scores(stacked, x, y, units, "val")
    for k, member in enumerate(members):
        predicted, target = units.outputs(member(x).detach()), units.outputs(y)
        own = {"val/mse": MeanSquaredError(), "val/mae": MeanAbsoluteError(), "val/r2": R2Score()}
        assert scores[k].keys() == own.keys()
        for name, metric in own.items():
            assert scores[k][name] == pytest.approx(float(metric(predicted, target)), rel=1e-6), (k, name)
    assert member_scores(stacked, x[:1], y[:1], units, "test")[0].keys() == {"test/mse", "test/mae"}  # no R2 of one


def test_a_jobs_config_copied_with_its_values_equals_hydras_own_composition() -> None:
    from hydra._internal.config_loader_impl import ConfigLoaderImpl
    from hydra._internal.utils import create_config_search_path
    from hydra.types import RunMode
    from omegaconf import OmegaConf

    from linreg.batched_compose import SweepConfigs

    loader = ConfigLoaderImpl(config_search_path=create_config_search_path(str(Path("conf").resolve())))
    master = loader.load_configuration("train", ["lr=0.1,0.2", "hydra/launcher=batched"], RunMode.MULTIRUN)
    configs = SweepConfigs(loader)
    jobs = [
        ["lr=0.01", "iters=5", "optimizer.momentum=0.5"],
        ["lr=0.02", "iters=7", "optimizer.momentum=0"],  # the same keys: a copy of the first with these values
        ["data=synthetic", "lr=0.5"],  # another config chosen: composed by Hydra
        ["data=synthetic", "lr=0.25"],
        ["+extra=1", "lr=0.1"],  # an added key: composed by Hydra
        ["lr=${iters}", "iters=3"],  # an interpolation stays one
        ["lr=0.1", "iters=3"],
    ]
    for job in jobs:
        ours = configs.load_sweep_config(master, job)
        assert configs.load_sweep_config(master, job) is ours  # the sweeper's check's config goes to the launcher
        hydras = loader.load_sweep_config(master, job)
        assert OmegaConf.to_container(ours) == OmegaConf.to_container(hydras), job
        assert OmegaConf.is_struct(ours) and ours.hydra.job.override_dirname == hydras.hydra.job.override_dirname
    assert len(configs._composed) == 4  # lr/iters/momentum, data=synthetic, +extra, lr/iters


@pytest.mark.e2e
@pytest.mark.slow
def test_a_batched_sweep_cut_by_sigterm_continues_in_place_to_the_numbers_of_an_uncut_run(tmp_path: Path) -> None:
    uncut_dir = tmp_path / "uncut"
    assert train_command(tmp_path, "lr=0.01", "iters=5000", run_dir=uncut_dir).returncode == 0
    uncut = read_json(uncut_dir / "results.json")
    command = [sys.executable, str(REPO / "scripts" / "train.py"), "-m", "lr=0.01", "iters=500,5000"]
    process = subprocess.Popen(
        [*command, "hydra/launcher=batched"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, start_new_session=True,
    )  # fmt: skip
    sweeps = tmp_path / "outputs" / "multirun"
    records = lambda job: [path / job / "results.json" for path in sweeps.glob("*/*")]  # noqa: E731
    # both members start together (their records say running); the 500-step one ends inside the batched run
    wait_for(lambda: all(any(r.exists() for r in records(job)) for job in ("iters=500,lr=0.01", "iters=5000,lr=0.01")))
    time.sleep(2.0)  # past step 500, into the 5000 steps (3 to 5 seconds)
    os.killpg(process.pid, signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGTERM, stderr
    sweep = next(sweeps.glob("*/*"))
    assert f"continue the sweep with: python scripts/train.py -m resume={sweep.relative_to(tmp_path)}" in stdout
    finished, cut = sweep / "iters=500,lr=0.01", sweep / "iters=5000,lr=0.01"
    assert read_json(finished / "results.json")["status"] == "ok"
    cut_record = read_json(cut / "results.json")
    assert cut_record["status"] == "interrupted" and 500 < cut_record["steps"] < 5000
    assert (cut / "checkpoints" / "last.ckpt").is_file() and (cut / ".hydra" / "config.yaml").is_file()
    record = continue_cut_sweep(tmp_path, sweep, finished, cut, 5000)
    for key in ("weight", "bias", "val_mse", "train_loss", "test_mse"):
        _assert_close(uncut[key], record[key], key)


def test_a_members_job_runner_gives_what_hydras_run_job_gives(tmp_path: Path) -> None:
    import copy

    from hydra._internal.config_loader_impl import ConfigLoaderImpl
    from hydra._internal.utils import create_config_search_path
    from hydra.core.hydra_config import HydraConfig
    from hydra.core.utils import run_job
    from hydra.types import HydraContext, RunMode
    from omegaconf import OmegaConf, open_dict, read_write

    import linreg.run_folder  # noqa: F401  (its resolvers name the job's folder)
    from linreg.batched_job import run_member_job, without_hydra

    class Calls:  # Hydra's callbacks, as the job runner calls them
        def __init__(self) -> None:
            self.seen: list[tuple[str, Any]] = []

        def on_job_start(self, config: Any, task_function: Any) -> None:
            self.seen.append(("start", OmegaConf.to_container(config)))

        def on_job_end(self, config: Any, job_return: Any) -> None:
            self.seen.append(("end", job_return))

    loader = ConfigLoaderImpl(config_search_path=create_config_search_path(str(Path("conf").resolve())))
    master = loader.load_configuration("train", ["lr=0.1,0.2", "hydra/launcher=batched"], RunMode.MULTIRUN)
    composed = loader.load_sweep_config(master, ["lr=0.02", "iters=7"])
    with open_dict(composed):
        composed.hydra.sweep.dir = str(tmp_path / "sweep")
        composed.hydra.job.id = composed.hydra.job.num = 3
    seen_in_task: dict[str, Any] = {}

    def task(cfg: Any) -> float:
        seen_in_task.setdefault("runtime", []).append(HydraConfig.get().runtime.output_dir)
        seen_in_task.setdefault("lr", []).append(cfg.lr)
        return 0.5

    hydras_calls, ours_calls = Calls(), Calls()
    config = copy.deepcopy(composed)
    theirs = run_job(
        hydra_context=HydraContext(loader, hydras_calls), task_function=task, config=config,
        job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir",
    )  # fmt: skip
    run_dir = Path(theirs.hydra_cfg.hydra.runtime.output_dir)
    hydras_files = {path.name: path.read_text() for path in (run_dir / ".hydra").iterdir()}
    log_file = next(run_dir.glob("*.log"))
    log_file.unlink()
    for path in (run_dir / ".hydra").iterdir():
        path.unlink()

    config = copy.deepcopy(composed)  # as the launcher's checks leave it: its folder set, HydraConfig made once
    with read_write(config.hydra.runtime), open_dict(config.hydra.runtime):
        config.hydra.runtime.output_dir = str(run_dir)
    HydraConfig.instance().set_config(config)
    ours = run_member_job(HydraContext(loader, ours_calls), task, config, HydraConfig.instance().cfg,
                          without_hydra(config), None)  # fmt: skip
    assert {path.name: path.read_text() for path in (run_dir / ".hydra").iterdir()} == hydras_files
    assert log_file.exists()
    for field in ("overrides", "working_dir", "task_name", "status", "return_value"):
        assert getattr(ours, field) == getattr(theirs, field), field
    assert OmegaConf.to_container(ours.cfg) == OmegaConf.to_container(theirs.cfg)
    assert OmegaConf.is_struct(ours.cfg) == OmegaConf.is_struct(theirs.cfg)
    assert OmegaConf.to_container(ours.hydra_cfg) == OmegaConf.to_container(theirs.hydra_cfg)
    assert seen_in_task == {"runtime": [str(run_dir)] * 2, "lr": [0.02, 0.02]}
    assert [name for name, _ in ours_calls.seen] == [name for name, _ in hydras_calls.seen] == ["start", "end"]
    assert ours_calls.seen[0][1] == hydras_calls.seen[0][1] and ours_calls.seen[1][1] is ours
