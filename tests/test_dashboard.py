"""`python scripts/open_tensorboard.py` (`make tensorboard`): the latest sweep by default, every fit picture kept, and a
folder with more runs than TensorBoard ticks said (`linreg.dashboard`)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, run_command, tensorboard_server, wait_for
from torch.utils.tensorboard import SummaryWriter

from linreg.dashboard import TICKED_RUNS, default_folder, notes, tensorboard_arguments

IMAGES = 15  # more than the 10 per tag and run that TensorBoard keeps by default


def _run(folder: Path, images: int = 0) -> Path:
    """A run folder with a loss curve and `images` fit pictures, as a run's TensorBoard logger leaves it."""
    with SummaryWriter(log_dir=str(folder)) as writer:
        writer.add_scalar("loss/train", 1.0, 0)
        for step in range(images):
            writer.add_image("prediction/fit", np.full((3, 4, 4), step / images), step)
    return folder


def _outputs(tmp_path: Path) -> Path:
    outputs = tmp_path / "outputs"
    for sweep in ("2026-12-06/23-59-59.000001", "2026-12-07/09-30-00.000001"):
        for job in ("lr=0.1", "lr=0.2"):
            _run(outputs / "multirun" / sweep / job)
        (outputs / "multirun" / sweep / "multirun.yaml").write_text("hydra: {}\n")
    _run(outputs / "runs" / "2026-12-07" / "10-00-00.000001_lr-0.3")
    return outputs


@pytest.mark.parametrize("script", sorted(path.stem for path in (REPO / "scripts").glob("*.py")))
def test_no_script_hides_a_package(script):
    """scripts/ is first on the path of its scripts and of joblib's workers: a scripts/tensorboard.py made every
    joblib job fail with "TensorBoard logging requires TensorBoard version 1.15 or above"."""
    assert importlib.util.find_spec(script) is None, script


def test_the_default_is_the_latest_sweep(tmp_path):
    outputs = _outputs(tmp_path)
    assert default_folder(outputs) == outputs / "multirun" / "2026-12-07" / "09-30-00.000001"
    assert default_folder(tmp_path / "no-sweeps-yet") == tmp_path / "no-sweeps-yet"


def test_every_image_is_kept_and_the_users_flags_come_last(tmp_path):
    assert tensorboard_arguments(tmp_path, ["--port", "6007"]) == [
        "--logdir", str(tmp_path), "--samples_per_plugin", "images=1000", "--port", "6007",
    ]  # fmt: skip


@pytest.mark.parametrize(("runs", "noted"), [(TICKED_RUNS, False), (TICKED_RUNS + 1, True)])
def test_more_runs_than_tensorboard_ticks_are_said(tmp_path, runs, noted):
    for i in range(runs):
        (tmp_path / f"run{i}").mkdir()
        (tmp_path / f"run{i}" / "events.out.tfevents.1.host.1.0").touch()
    lines = notes(tmp_path, chosen=True)
    assert lines[0] == f"TensorBoard on {tmp_path} ({runs} runs)"
    assert any(f"ticks the first {TICKED_RUNS} of these {runs} runs" in line for line in lines) == noted


@pytest.mark.e2e
def test_make_tensorboard_serves_the_latest_sweep_with_every_picture(tmp_path):
    outputs = _outputs(tmp_path)
    latest = outputs / "multirun" / "2026-12-07" / "09-30-00.000001"
    _run(latest / "lr=0.2", images=IMAGES)
    script = [sys.executable, str(REPO / "scripts" / "open_tensorboard.py")]
    with tensorboard_server(latest, command=script, cwd=tmp_path) as api:

        def pictures() -> list:
            return api("/data/plugin/images/images?run=lr%3D0.2&tag=prediction%2Ffit&sample=0")

        wait_for(lambda: len(pictures()) > 0, timeout=60)  # the server reads the event files after it starts
        runs = api("/data/runs")
        shown = pictures()
    assert sorted(runs) == ["lr=0.1", "lr=0.2"]  # the latest sweep's jobs, not the older sweep's or the runs
    assert len(shown) == IMAGES
    make = subprocess.run(["make", "-n", "tensorboard"], cwd=REPO, capture_output=True, text=True, check=True)
    assert "scripts/open_tensorboard.py" in make.stdout


@pytest.mark.e2e
def test_no_runs_yet_is_one_line(tmp_path):
    result = run_command(["scripts/open_tensorboard.py"], cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == "error: folder: no such folder 'outputs'; expected a run first: python scripts/train.py\n"
