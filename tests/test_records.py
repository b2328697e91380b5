"""Records that never lie: what a run folder says is what the run trained with and what happened to it; no run
writes into another's folder; faults and second signals lose nothing."""

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import yaml
from conftest import REPO, compose_config, read_json, start_train, train_command, wait_for
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf

from linreg.resume import run_config
from linreg.train import train

pytestmark = pytest.mark.slow
# The tests that share a module fixture run on one worker (xdist loadgroup); the others go wherever is free.
ONE_WORKER = pytest.mark.xdist_group("records")


def contents(folder):
    """Every file under `folder` with a hash of its bytes: "unchanged" means byte for byte."""
    files = (p for p in folder.rglob("*") if p.is_file())
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def one_error_line(result, code=2):
    assert result.returncode == code, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    return line


@pytest.fixture(scope="module")
def lr_run(tmp_path_factory):
    """A finished run at a learning rate other than the default."""
    cwd = tmp_path_factory.mktemp("lr_run")
    assert train_command(cwd, "lr=0.01", "iters=100", run_dir=cwd / "run").returncode == 0
    return cwd / "run"


@ONE_WORKER
@pytest.mark.e2e
def test_resumed_runs_record_the_config_they_trained_with(lr_run, tmp_path):
    first = train_command(tmp_path, f"resume={lr_run}", "iters=150", run_dir=tmp_path / "first")
    assert first.returncode == 0, first.stderr
    saved = yaml.safe_load((tmp_path / "first" / ".hydra" / "config.yaml").read_text())
    assert (saved["lr"], saved["iters"], saved["resume"]) == (0.01, 150, str(lr_run))  # not the defaults
    second = train_command(tmp_path, f"resume={tmp_path / 'first'}", "iters=200", run_dir=tmp_path / "second")
    assert second.returncode == 0, second.stderr
    record = read_json(tmp_path / "second" / "results.json")
    assert (record["lr"], record["steps"], record["status"]) == (0.01, 200, "ok")


@ONE_WORKER
@pytest.mark.e2e
@pytest.mark.parametrize("iters", [100, 50])
def test_a_resume_with_nothing_to_do_is_refused(lr_run, tmp_path, iters):
    result = train_command(tmp_path, f"resume={lr_run}", f"iters={iters}")
    assert one_error_line(result) == (
        f"error: iters: {iters}, but the run in {lr_run} already reached step 100; "
        "expected more steps to train on, e.g. iters=200"
    )
    assert not list(tmp_path.rglob("results.json"))


@pytest.mark.e2e
def test_a_run_cut_short_by_the_trainers_time_limit_says_so(tmp_path):
    result = train_command(tmp_path, "+trainer.max_time=00:00:00:00", run_dir=tmp_path / "run")
    assert result.returncode == 0, result.stderr
    record = read_json(tmp_path / "run" / "results.json")
    assert (record["status"], record["stopped_by"]) == ("stopped", "trainer.max_time")
    assert record["steps"] < record["iters"]
    assert "stopped by trainer.max_time at step" in result.stdout


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("+trainer.fast_dev_run=true", "trainer.fast_dev_run: True is refused: it trains a batch or two"),
        ("+trainer.limit_train_batches=0", "trainer.limit_train_batches: 0 is refused: it cuts epochs short"),
        ("+trainer.limit_val_batches=0", "trainer.limit_val_batches: 0 is refused: the run's validation metrics"),
        ("+trainer.accumulate_grad_batches=2", "trainer.accumulate_grad_batches: 2 is refused: an iter is one"),
        ("trainer=ddp trainer.devices=3", "trainer.devices: 3 processes cannot share the 4 training rows"),
        ("trainer.devices=2 +trainer.strategy=ddp_spawn", "trainer.strategy: 'ddp_spawn' is refused: its processes"),
        ("trainer.check_val_every_n_epoch=2", "trainer.check_val_every_n_epoch: 2 is refused: on the full batch"),
        ("-m trainer.devices=2 lr=0.1,0.01", "error: job lr=0.1,trainer.devices=2: trainer=ddp: DDP cannot run"),
    ],
)
def test_trainer_arguments_that_would_break_a_promise_are_refused(tmp_path, override, message):
    result = train_command(tmp_path, *override.split())
    if override.startswith("-m"):  # a sweep: each job refused, the sweep ends non-zero
        assert result.returncode == 1 and message in result.stderr and "Traceback" not in result.stderr
        return
    assert one_error_line(result).startswith(message if message.startswith("error") else f"error: {message}")
    assert not [p for p in tmp_path.rglob("results.json") if json.loads(p.read_text())["status"] != "failed"]


@ONE_WORKER
@pytest.mark.e2e
def test_no_run_writes_into_another_runs_folder(lr_run, tmp_path):
    before = contents(lr_run)
    into_it = train_command(tmp_path, "lr=0.5", run_dir=lr_run)
    resume_into_it = train_command(tmp_path, f"resume={lr_run}", "iters=300", run_dir=lr_run)
    for result in (into_it, resume_into_it):
        assert one_error_line(result) == (
            f"error: hydra.run.dir: '{lr_run}' already holds files (another run's?); expected a new or empty "
            "folder, so that no run writes into another's"
        )
    assert contents(lr_run) == before


def _sweep_command(sweep_dir, *overrides):
    script = str(REPO / "scripts" / "train.py")
    return [sys.executable, script, "-m", *overrides, f"hydra.sweep.dir={sweep_dir}"]


@pytest.mark.e2e
def test_jobs_of_a_sweep_never_share_a_folder(tmp_path):
    result = subprocess.run(
        _sweep_command(tmp_path / "s", "iters=20,30", "hydra.sweep.subdir=same"), capture_output=True, text=True
    )
    assert result.returncode == 2 and "already holds another job's results" in result.stderr
    assert read_json(tmp_path / "s" / "same" / "results.json")["iters"] == 20  # the first job's record is whole


@pytest.mark.e2e
def test_resuming_a_diverged_run_is_refused(tmp_path):
    assert train_command(tmp_path, "lr=1.0", "iters=100", run_dir=tmp_path / "dv").returncode == 0
    assert read_json(tmp_path / "dv" / "results.json")["status"] == "diverged"
    result = train_command(tmp_path, f"resume={tmp_path / 'dv'}", "iters=200")
    assert (
        one_error_line(result)
        == f"error: resume: the run in {tmp_path / 'dv'} diverged; expected a new run, with a smaller lr"
    )


# A callback of the test's own, added to the run like a user's (`+callbacks.<name>`, allowed through
# LINREG_ALLOWED_TARGETS): it notes each validation's start and end, with the signal that the run's
# GracefulInterrupt had received by then, one JSON line each.
VALIDATION_PROBE = """\
import json
import time

import lightning as L

from linreg.interrupt import GracefulInterrupt


class ValidationProbe(L.Callback):
    def __init__(self, path):
        self.path = path

    def _note(self, trainer, event):
        (interrupt,) = [c for c in trainer.callbacks if isinstance(c, GracefulInterrupt)]
        received = interrupt.received.name if interrupt.received else None
        line = {"event": event, "fn": str(trainer.state.fn.value), "step": trainer.global_step, "received": received}
        with open(self.path, "a") as file:
            file.write(json.dumps(line) + "\\n")

    def on_validation_start(self, trainer, pl_module):
        self._note(trainer, "start")
        # the final validation (not step 0's) is held open until the signal comes: it arrives during it
        if str(trainer.state.fn.value) == "validate" and trainer.global_step > 0:
            (interrupt,) = [c for c in trainer.callbacks if isinstance(c, GracefulInterrupt)]
            deadline = time.monotonic() + 120
            while interrupt.received is None and time.monotonic() < deadline:
                time.sleep(0.02)

    def on_validation_end(self, trainer, pl_module):
        self._note(trainer, "end")
"""


def _probed(path):
    """The probe's notes so far (whole lines only: the run may be writing the next one)."""
    text = path.read_text() if path.exists() else ""
    return [json.loads(line) for line in text.splitlines(keepends=True) if line.endswith("\n")]


@pytest.mark.e2e
def test_a_signal_during_the_final_validation_still_ends_in_a_whole_record(tmp_path, monkeypatch):
    (tmp_path / "validation_probe.py").write_text(VALIDATION_PROBE)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    monkeypatch.setenv("LINREG_ALLOWED_TARGETS", "validation_probe")
    run_dir, notes = tmp_path / "run", tmp_path / "validations.jsonl"
    probe = f"+callbacks.probe={{_target_: validation_probe.ValidationProbe, path: '{notes}'}}"
    batched = ["data=synthetic", "data.batch_size=1", "iters=10", "logger=none"]  # a final validation of 100 batches
    process = start_train(tmp_path, *batched, probe, f"hydra.run.dir={run_dir}")
    final = {"event": "start", "fn": "validate", "step": 10, "received": None}  # held open by the probe
    wait_for(lambda: final in _probed(notes) or process.poll() is not None, timeout=300)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr  # the run had reached iters: it ends ok, not interrupted
    assert "Traceback" not in stderr
    # the signal arrived during the final validation: not yet received when it started, received when it ended
    assert _probed(notes)[-2:] == [final, {**final, "event": "end", "received": "SIGTERM"}]
    record = read_json(run_dir / "results.json")
    assert record["status"] == "ok" and record["steps"] == 10  # it had reached iters: the record is complete
    assert record["val_mse"] is not None and (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert record["val_curve"][-1][0] == 10  # the final validation's score is in the curve, not cut off


@pytest.mark.e2e
def test_a_sweep_folder_is_never_shared(tmp_path):
    sweep_dir = tmp_path / "sweep"
    first = subprocess.run(_sweep_command(sweep_dir, "iters=5,6"), capture_output=True, text=True, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    before = contents(sweep_dir)
    again = subprocess.run(_sweep_command(sweep_dir, "iters=7"), capture_output=True, text=True, cwd=tmp_path)
    assert "error: hydra.sweep.dir:" in one_error_line(again) and contents(sweep_dir) == before

    together = tmp_path / "together"
    processes = [
        subprocess.Popen(_sweep_command(together, f"iters={n}"), cwd=tmp_path, stderr=subprocess.PIPE, text=True)
        for n in (3, 4)
    ]
    outcomes = sorted((p.wait(timeout=300), p.stderr.read()) for p in processes)
    assert [code for code, _ in outcomes] == [0, 2]  # one sweep claims the folder, the other is refused
    assert "already holds files" in outcomes[1][1]
    assert [p.name for p in together.iterdir() if p.is_dir() and not p.name.startswith(".")] in (
        ["iters=3"],
        ["iters=4"],
    )


@contextlib.contextmanager
def small_filesystem(folder, size, read_only=False):
    """A real tmpfs of `size` mounted at `folder` (root only): writes fail with ENOSPC or EROFS for real."""
    folder.mkdir()
    options = f"size={size}" + (",ro" if read_only else "")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode != 0:
        reason = f"cannot mount a small filesystem here (needs root): {mounted.stderr.decode().strip()}"
        if os.environ.get("CI"):  # CI runs as root: a skip there would hide these tests for good
            pytest.fail(f"{reason}; CI (CI={os.environ['CI']}) must run the tests on a small filesystem, not skip them")
        pytest.skip(reason)
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)


@pytest.mark.e2e
@pytest.mark.parametrize("size", ["12k", "20k", "28k", "36k", "96k", "512k"])
def test_a_full_disk_leaves_no_half_truth(tmp_path, size):
    """Whatever point the disk fills at, the command says so in one line and results.json is whole and true:
    "ok" with its checkpoint, "failed" with the error, or absent."""
    with small_filesystem(tmp_path / "disk", size) as disk:
        result = train_command(tmp_path, "iters=100", run_dir=disk / "run")
        results = disk / "run" / "results.json"
        record = json.loads(results.read_text()) if results.exists() else None
        if result.returncode == 0:
            assert record["status"] == "ok" and (disk / "run" / "checkpoints" / "last.ckpt").is_file()
        else:
            line = one_error_line(result, code=1)
            assert "No space left on device; expected a writable folder with free space" in line
            assert record is None or (record["status"] == "failed" and "No space left" in record["error"])
    # a 100-step run writes about 150k (the fit pictures in the events and fit.png): the smaller disks fill up
    assert (result.returncode == 0) == (size == "512k")


@pytest.mark.e2e
def test_a_read_only_folder_is_one_line(tmp_path):
    with small_filesystem(tmp_path / "ro", "64k", read_only=True) as folder:
        result = train_command(tmp_path, run_dir=folder / "run")
        assert one_error_line(result, code=1) == (
            f"error: {folder / 'run'}: Read-only file system; expected a writable folder with free space"
        )


@pytest.mark.e2e
def test_more_signals_during_the_wrap_up_still_finish_the_record(tmp_path):
    run_dir = tmp_path / "run"
    process = start_train(tmp_path, "iters=100000", f"hydra.run.dir={run_dir}")
    wait_for(lambda: any(run_dir.glob("events.out.tfevents.*")))
    for _ in range(5):  # the first stops training; the others land in the validation, checkpoint and results
        process.send_signal(signal.SIGTERM)
        time.sleep(0.02)
    _, stderr = process.communicate(timeout=120)
    # 143 as the command's own exit, or killed by a signal that came after the record was finished
    assert process.returncode in (128 + signal.SIGTERM, -signal.SIGTERM), stderr
    assert "Traceback" not in stderr
    record = read_json(run_dir / "results.json")
    assert record["status"] == "interrupted" and record["interrupted_by"] == "SIGTERM"
    assert record["val_mse"] is not None and (run_dir / "checkpoints" / "last.ckpt").is_file()


@pytest.mark.e2e
def test_ctrl_c_during_start_up_is_one_line(tmp_path):
    run_dir = tmp_path / "run"
    process = start_train(tmp_path, f"hydra.run.dir={run_dir}")
    wait_for(lambda: (run_dir / ".hydra" / "config.yaml").exists())  # the job starts: Lightning is importing
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGINT
    assert stderr.strip() == "error: interrupted by SIGINT before training started; no run was recorded"
    assert not (run_dir / "results.json").exists()


@pytest.mark.e2e
def test_ddp_with_a_validation_split_that_does_not_divide_scores_like_one_process(tmp_path):
    common = ["data=synthetic", "data.source.n_samples=30", "lr=0.1", "iters=50"]  # 24 train, 3 val rows
    ddp = train_command(tmp_path, *common, "trainer=ddp", run_dir=tmp_path / "ddp")
    single = train_command(tmp_path, *common, run_dir=tmp_path / "single")
    assert ddp.returncode == 0 and single.returncode == 0, ddp.stderr + single.stderr
    assert "Traceback" not in ddp.stderr
    records = [read_json(tmp_path / name / "results.json") for name in ("ddp", "single")]
    assert (records[0]["processes"], records[0]["batch_size"]) == (2, 24)  # the full batch: all 24 training rows
    for key in ("val_mse", "val_mae", "val_r2"):
        assert records[0][key] is not None
        assert records[0][key] == pytest.approx(records[1][key], rel=1e-5), key
    np.testing.assert_allclose(records[0]["weight"], records[1]["weight"], atol=1e-5)


QUIET = ["logger=none", "~callbacks.progress", "data=synthetic", "data.source.n_samples=120", "data.batch_size=16"]


def _in_process_run(run_dir, *overrides):
    """train() as the command runs it, with the config saved where Hydra would put it (for resume=)."""
    cfg = compose_config(*QUIET, *overrides)
    (run_dir / ".hydra").mkdir(parents=True)
    OmegaConf.save(cfg, run_dir / ".hydra" / "config.yaml")
    return train(run_config(cfg, overrides), run_dir, overrides)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@example(lr=0.01, momentum=0.0, stop=6, more=2)  # a stop on the epoch's last batch: Lightning restarts oddly there
@example(lr=0.05, momentum=0.9, stop=9, more=14)  # mid-epoch, resumed across two epoch boundaries
@given(
    lr=st.sampled_from([0.01, 0.05, 0.1]),
    momentum=st.sampled_from([0.0, 0.9]),
    stop=st.integers(1, 40),
    more=st.integers(1, 40),
)
def test_a_resumed_run_equals_an_uninterrupted_one(tmp_path_factory, lr, momentum, stop, more):
    """Stopped after `stop` steps (mid-epoch or not: 96 rows, batches of 16) and resumed to `stop + more`."""
    folder = tmp_path_factory.mktemp("resume")
    config = [f"lr={lr}", f"optimizer.momentum={momentum}"]
    whole = _in_process_run(folder / "whole", *config, f"iters={stop + more}")
    part = _in_process_run(folder / "part", *config, f"iters={stop}")
    resumed_cfg = compose_config(*QUIET, f"resume={folder / 'part'}", f"iters={stop + more}")
    resumed_overrides = [f"resume={folder / 'part'}", f"iters={stop + more}"]
    resumed = train(run_config(resumed_cfg, resumed_overrides), folder / "resumed", resumed_overrides)
    assert (resumed["lr"], resumed["steps"], resumed["status"]) == (lr, stop + more, "ok")
    assert resumed["weight"] == whole["weight"] and resumed["bias"] == whole["bias"]
    # the curve goes on from the first part's (which was validated where it stopped), and ends as the whole's
    assert resumed["val_curve"][: len(part["val_curve"])] == part["val_curve"]
    assert resumed["val_curve"][-1] == whole["val_curve"][-1] and resumed["val_curve"][0][0] == 0
