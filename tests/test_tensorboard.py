"""What a real `tensorboard` server shows for a run: the loss curve and the HPARAMS tab."""

import pytest
from conftest import hparams_sessions, tensorboard_server


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
