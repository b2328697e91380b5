"""Every command the README shows, run as a user would run it, in the order it shows them."""

import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, read_json, run_command, tensorboard_server

pytestmark = pytest.mark.slow

README = (REPO / "README.md").read_text()
COMMANDS = [
    line.split("  #")[0].strip()
    for block in re.findall(r"```bash\n(.*?)```", README + (REPO / "docs" / "tutorial.md").read_text(), re.S)
    for line in block.splitlines()
    if line.strip()
]
# What a test does not run as it is, and why: the README's own test command runs this suite (CI runs it
# through .ci/run), and the Optuna search is cut from 20 trials to 3.
SHORTER = {"python scripts/train.py -m hparams_search=optuna": ["hydra.sweeper.n_trials=3"]}


def test_the_readme_shows_the_two_setup_commands_first():
    assert COMMANDS[:2] == ["make train", "make test"]
    assert "make test" in (REPO / ".ci" / "run").read_text()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("readme")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 2))
    y = x @ [1.0, -1.0] + 0.5
    np.savetxt(cwd / "my.csv", np.column_stack([x, y]), delimiter=",", header="a,b,y", comments="")
    return cwd


def _latest(cwd: Path, kind: str) -> str:
    return str(max((cwd / "outputs" / kind).glob("*/*")).relative_to(cwd))


def _run(command: str, cwd: Path) -> subprocess.CompletedProcess:
    command = command.replace("outputs/runs/<date>/<time>", _latest(cwd, "runs") if "runs/<" in command else "")
    if "outputs/multirun/<date>/<time>" in command:
        command = command.replace("outputs/multirun/<date>/<time>", _latest(cwd, "multirun"))
    args = command.split()[1:] + SHORTER.get(command, [])
    result = run_command(args, cwd=cwd)
    assert result.returncode == 0, f"{command}\n{result.stderr}"
    return result


PYTHON_COMMANDS = [c for c in COMMANDS if c.startswith("python ") and "hydra/launcher=slurm" not in c]


def test_every_readme_command_is_covered_here():
    others = {"make train", "make test", "make tensorboard", "tensorboard --logdir outputs"}
    slurm = [c for c in COMMANDS if "hydra/launcher=slurm" in c]
    assert set(COMMANDS) <= set(PYTHON_COMMANDS) | others | set(slurm)


@pytest.mark.parametrize("command", PYTHON_COMMANDS)
def test_readme_command(command, workdir):
    result = _run(command, workdir)
    if command.startswith("python scripts/train.py -m"):
        sweep = workdir / _latest(workdir, "multirun")
        assert (sweep / "summary.csv").is_file() and (sweep / "summary.png").is_file()
        assert "sweep summary" in result.stdout
    elif command.startswith("python scripts/train.py"):
        run = workdir / _latest(workdir, "runs")
        assert read_json(run / "results.json")["status"] == "ok"
        assert f"run folder: {run.relative_to(workdir)}" in result.stdout
    if command == "python scripts/train.py lr=0.1 iters=500 seed=0":
        assert "Prediction after training: f(5) = 10.000" in result.stdout
    if command.startswith("python scripts/predict.py"):
        assert result.stdout.startswith("f(5) = ")
    if command.startswith("python scripts/tutorial.py"):
        assert "## " in result.stdout


def test_readme_slurm_command_composes_its_launcher():
    (command,) = [c for c in COMMANDS if "hydra/launcher=slurm" in c]
    args = [a for a in command.split()[1:] if a != "-m"]  # --cfg prints the config instead of running
    result = run_command([*args, "--cfg", "hydra", "--package", "hydra.launcher"], cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert "submitit_slurm" in result.stdout and "partition: gpu" in result.stdout
    assert "timeout_min: 60" in result.stdout


def test_readme_tensorboard_command_serves_the_runs(workdir):
    with tensorboard_server(workdir / "outputs") as api:
        runs = api("/data/runs")
    assert any(run.startswith("runs/") for run in runs) and any(run.startswith("multirun/") for run in runs)
    make = subprocess.run(["make", "-n", "tensorboard"], cwd=REPO, capture_output=True, text=True, check=True)
    assert "tensorboard --logdir outputs" in make.stdout


def test_make_train_trains_the_default(tmp_path):
    result = subprocess.run(
        ["make", "train", f"ARGS=hydra.run.dir={tmp_path}/run"], cwd=REPO, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    record = read_json(tmp_path / "run" / "results.json")
    assert (record["lr"], record["iters"], record["data"]) == (0.001, 1000, "seed")
    assert "Prediction after training: f(5) = 9.418" in result.stdout  # the seeded nn-loop cell's number
