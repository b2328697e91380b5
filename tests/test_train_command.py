"""`python scripts/train.py ...` and `python scripts/predict.py ...` as subprocesses into temporary folders, and
what a real `tensorboard` server shows for the run."""

import pytest
import torch
from conftest import hparams_sessions, read_json, run_command, tensorboard_server
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

RESULT_KEYS = {
    "status", "lr", "iters", "steps", "seed", "train_loss", "val_mse", "val_mae", "val_r2",
    "weight", "bias", "predictions", "wall_s",
}  # fmt: skip


def test_seed_run_learns_f_of_x_equals_2x(seed_run):
    result, run_dir = seed_run
    record = read_json(run_dir / "results.json")
    assert record.keys() >= RESULT_KEYS
    assert record["status"] == "ok"
    assert (record["lr"], record["iters"], record["steps"], record["seed"]) == (0.1, 1000, 1000, 42)
    assert record["weight"][0][0] == pytest.approx(2.0, abs=1e-3)
    assert record["bias"][0] == pytest.approx(0.0, abs=1e-3)
    assert f"{record['predictions'][0][0]:.3f}" == "10.000"
    assert "Prediction after training: f(5) = 10.000" in result.stdout
    assert "Prediction before training: f(5) = " in result.stdout
    assert f"run folder: {run_dir.relative_to(run_dir.parents[3])}" in result.stdout


def test_run_folder_holds_events_checkpoint_and_config(seed_run):
    _, run_dir = seed_run
    assert (run_dir / ".hydra" / "config.yaml").is_file()
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["global_step"] == 1000
    events = EventAccumulator(str(run_dir))
    events.Reload()
    loss = events.Scalars("train/loss")
    assert loss[0].step == 1 and loss[-1].step == 1000
    assert loss[-1].value < loss[0].value
    assert {"val/mse", "val/mae", "val/r2", "hp/val_mse"} <= set(events.Tags()["scalars"])


def test_run_writes_nothing_outside_its_folder(seed_run):
    _, run_dir = seed_run
    cwd = run_dir.parents[3]
    assert sorted(p.name for p in cwd.iterdir()) == ["outputs"]
    assert [p.relative_to(cwd).parts[:2] for p in (cwd / "outputs").iterdir()] == [("outputs", "runs")]


def test_predict_from_the_run_folder_and_the_checkpoint(seed_run, tmp_path):
    _, run_dir = seed_run
    for target in (run_dir, run_dir / "checkpoints" / "last.ckpt"):
        result = run_command(["scripts/predict.py", str(target), "5", "0.5"], cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines() == ["f(5) = 10.000", "f(0.5) = 1.000"]


def test_tensorboard_serves_the_loss_curve_and_hparams(seed_run):
    _, run_dir = seed_run
    with tensorboard_server(run_dir) as api:
        assert api("/data/runs") == ["."]
        tags = api("/data/plugin/scalars/tags")["."]
        assert {"train/loss", "val/mse", "val/mae", "val/r2"} <= tags.keys()
        curve = api("/data/plugin/scalars/scalars?run=.&tag=train/loss")
        steps = [step for _, step, _ in curve]
        assert steps[0] == 1 and steps[-1] == 1000 and len(steps) == 101
        experiment = api("/data/plugin/hparams/experiment", {"experimentName": ""})
        assert {"lr", "iters", "batch_size", "seed", "data"} <= {h["name"] for h in experiment["hparamInfos"]}
        (session,) = hparams_sessions(api).values()
    assert session["hparams"]["lr"] == 0.1
    assert session["hparams"]["iters"] == 1000
    assert session["hparams"]["data"] == "seed"
    assert session["metrics"]["hp/val_mse"] == pytest.approx(0.0, abs=1e-6)
    assert session["metrics"]["hp/val_r2"] == pytest.approx(1.0, abs=1e-6)
