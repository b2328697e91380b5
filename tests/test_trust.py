"""Runs you can trust: interruption and resume, determinism, atomic results, killed jobs."""

import csv
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from conftest import REPO, read_json, start_train, train_command, wait_for

pytestmark = pytest.mark.slow
# The tests that share a module fixture run on one worker (xdist loadgroup); the others go wherever is free.
ONE_WORKER = pytest.mark.xdist_group("trust")

MINI_BATCH = ["data=synthetic", "data.batch_size=64", "lr=0.05", "optimizer.momentum=0.9", "iters=1000", "seed=0"]


def _state(run_dir):
    return torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The reference: the mini-batch run with momentum, from start to end without a break."""
    cwd = tmp_path_factory.mktemp("uninterrupted")
    result = train_command(cwd, *MINI_BATCH, run_dir=cwd / "full")
    assert result.returncode == 0, result.stderr
    return cwd / "full"


def _interrupt_mid_epoch(cwd, signum, attempts=4):
    """Signals a run while it trains; returns its folder, stdout and results once a stop lands mid-epoch.

    The signal lands at whatever step the run has reached. One stop in 13 falls on an epoch boundary
    (800 samples / 64 = 13 batches), the easy case for resuming; the run is then repeated so that the
    hard case, a stop in the middle of an epoch, is the one checked.
    """
    for attempt in range(attempts):
        part_dir = cwd / f"part{attempt}"
        process = start_train(cwd, *MINI_BATCH, f"hydra.run.dir={part_dir}")
        wait_for(lambda folder=part_dir: any(folder.glob("events.out.tfevents.*")))  # training has started
        time.sleep(0.2)
        process.send_signal(signum)
        stdout, stderr = process.communicate(timeout=120)
        assert process.returncode == 128 + signum, stderr
        interrupted = read_json(part_dir / "results.json")
        if interrupted["steps"] % 13 != 0:
            return part_dir, stdout, interrupted
    pytest.fail(f"{attempts} interruptions all stopped on an epoch boundary")


@ONE_WORKER
@pytest.mark.e2e
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_interrupted_run_resumes_to_the_same_weights_bit_for_bit(tmp_path, signum, uninterrupted):
    """Stopped mid-epoch by either signal (Ctrl-C or a scheduler's SIGTERM), then resumed: the same weights."""
    part_dir, stdout, interrupted = _interrupt_mid_epoch(tmp_path, signum)
    assert interrupted["status"] == "interrupted" and interrupted["interrupted_by"] == signum.name
    assert 0 < interrupted["steps"] < 1000
    assert _state(part_dir)["global_step"] == interrupted["steps"]
    assert f"continue with: python scripts/train.py resume={part_dir.relative_to(tmp_path)}" in stdout

    resumed = train_command(tmp_path, f"resume={part_dir}", run_dir=tmp_path / "resumed")
    assert resumed.returncode == 0, resumed.stderr
    record, reference = read_json(tmp_path / "resumed" / "results.json"), read_json(uninterrupted / "results.json")
    assert record["resumed_from"].startswith(str(part_dir)) and record["steps"] == 1000
    expected, actual = _state(uninterrupted), _state(tmp_path / "resumed")
    for key in expected["state_dict"]:
        assert torch.equal(actual["state_dict"][key], expected["state_dict"][key]), key
    assert record["weight"] == reference["weight"] and record["bias"] == reference["bias"]
    assert read_json(part_dir / "results.json") == interrupted  # the interrupted run's folder is left alone


@ONE_WORKER
@pytest.mark.e2e
def test_same_config_and_seed_give_identical_numbers(tmp_path, uninterrupted):
    again = train_command(tmp_path, *MINI_BATCH, run_dir=tmp_path / "again")  # seed=0, shuffled mini-batches
    assert again.returncode == 0, again.stderr
    records = [read_json(folder / "results.json") for folder in (uninterrupted, tmp_path / "again")]
    commands = [record["provenance"].pop("command") for record in records]  # the run folders differ
    assert [
        command.endswith(f"hydra.run.dir={folder}")
        for command, folder in zip(commands, (uninterrupted, tmp_path / "again"), strict=True)
    ] == [True, True]
    for record in records:
        for timing in ("wall_s", "fit_s"):  # times differ from run to run; nothing else may
            record.pop(timing)
    assert records[0] == records[1] and records[0]["seed"] == 0
    assert "seed: 0" in (tmp_path / "again" / ".hydra" / "config.yaml").read_text()


@pytest.mark.e2e
def test_a_killed_job_leaves_whole_files_and_the_summary_marks_it(tmp_path):
    process = start_train(tmp_path, "-m", "iters=5,100000")
    sweeps = tmp_path / "outputs" / "multirun"

    def second_job_running() -> bool:
        found = list(sweeps.glob("*/*/iters=100000/results.json"))
        return bool(found) and any(found[0].parent.glob("events.out.tfevents.*"))

    wait_for(second_job_running)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    (sweep_dir,) = sweeps.glob("*/*")
    killed = read_json(sweep_dir / "iters=100000" / "results.json")  # whole JSON, not half a file
    assert killed["status"] == "running"
    assert read_json(sweep_dir / "iters=5" / "results.json")["status"] == "ok"
    assert not [p for p in sweep_dir.rglob("*.tmp")]
    rows = (sweep_dir / "summary.csv").read_text().splitlines()  # written after the first job
    assert len(rows) == 2 and ",ok," in rows[1]
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "summarize.py"), str(sweep_dir)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    with (sweep_dir / "summary.csv").open() as file:
        statuses = {row["job"]: row["status"] for row in csv.DictReader(file)}
    assert statuses == {"iters=5": "ok", "iters=100000": "running"}


def test_results_are_written_atomically(tmp_path, monkeypatch):
    from linreg import record

    record.write(tmp_path, {"status": "ok", "value": 1.0})
    original = os.replace

    def crash(*args):
        raise OSError("disk full")

    monkeypatch.setattr(record.os, "replace", crash)
    with pytest.raises(OSError):
        record.write(tmp_path, {"status": "ok", "value": 2.0})
    monkeypatch.setattr(record.os, "replace", original)
    assert json.loads((tmp_path / "results.json").read_text()) == {"status": "ok", "value": 1.0}
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]  # no temporary file left behind


def test_non_finite_numbers_become_null_in_results(tmp_path):
    from linreg import record

    record.write(tmp_path, {"loss": float("inf"), "w": [[float("nan"), 1.5]]})
    assert json.loads((tmp_path / "results.json").read_text()) == {"loss": None, "w": [[None, 1.5]]}
