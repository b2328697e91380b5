"""The README's sweep commands, run as a user would, in the order the README shows them."""

import csv
from pathlib import Path

import pytest
from conftest import README_COMMANDS, REPO, read_json, run_readme_commands
from hydra import compose, initialize_config_dir

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("readme_sweeps")]  # one worker: shares module fixtures

SWEEP_COMMANDS = [
    c
    for c in README_COMMANDS
    if c.startswith(("python scripts/train.py -m", "python scripts/summarize.py")) and "hydra/launcher=slurm" not in c
]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("readme_sweeps")


@pytest.fixture(scope="module")
def readme(workdir):
    """Every sweep command of the README, run once in its order (summarize.py reads the grid before it)."""
    return run_readme_commands(SWEEP_COMMANDS, workdir, "multirun")


@pytest.mark.parametrize("command", SWEEP_COMMANDS)
def test_readme_sweep_command(command, readme):
    result, sweep = readme[command].result, readme[command].folder
    assert result.returncode == 0, f"{command}\n{result.stderr}"
    assert (sweep / "summary.csv").is_file() and (sweep / "summary.png").is_file()
    if command.startswith("python scripts/train.py -m"):
        assert "sweep summary" in result.stdout
    if command == "python scripts/train.py -m model=linear,mlp optimizer=sgd,adam lr=0.01,0.1":
        with (sweep / "summary.csv").open() as file:
            rows = list(csv.DictReader(file))
        jobs = {(row["model"], row["optimizer"], row["lr"]) for row in rows}  # the swept choices, once each
        assert len(rows) == 8 and jobs == {
            (m, o, lr) for m in ("linear", "mlp") for o in ("sgd", "adam") for lr in ("0.01", "0.1")
        }
        assert rows[0]["job"] == result.stdout.strip().splitlines()[-1].split(": ")[1].split(" (")[0]
        assert all(bool(row["w"]) == (row["model"] == "linear") for row in rows)  # w only where linear
    if command == "python scripts/train.py -m lr=0.001,0.01,0.1,1.0 iters=100,1000":
        assert result.stdout.strip().splitlines()[-1] == "best by val_mse: iters=1000,lr=0.1 (val_mse = 0)"


def test_readme_slurm_command_composes_its_launcher():
    (command,) = [c for c in README_COMMANDS if "hydra/launcher=slurm" in c]
    overrides = [a for a in command.split()[2:] if a != "-m" and "," not in a]  # a sweep list composes per job
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        launcher = compose("train", overrides=overrides, return_hydra_config=True).hydra.launcher
    assert launcher._target_ == "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    assert (launcher.partition, launcher.timeout_min, launcher.gpus_per_node) == ("gpu", 60, 0)


def _sweep_weights(cwd: Path, command_part: str) -> dict[str, list]:
    """The learned weights per job of the README sweep whose command contains `command_part`."""
    for sweep in (cwd / "outputs" / "multirun").glob("*/*"):
        if (sweep / "multirun.yaml").is_file() and command_part in (sweep / "multirun.yaml").read_text():
            return {p.parent.name: read_json(p)["weight"] for p in sweep.glob("*/results.json")}
    raise AssertionError(f"no sweep ran with {command_part}")


def test_readme_joblib_sweep_equals_the_sequential_one(readme, workdir):
    parallel = _sweep_weights(workdir, "hydra/launcher=joblib")
    sequential = _sweep_weights(workdir, "lr=0.001,0.01,0.1,1.0")
    assert len(parallel) == 6 and parallel == {job: sequential[job] for job in parallel}


def test_readme_submitit_and_optuna_sweeps_ran_their_engines(readme, workdir):
    assert len(_sweep_weights(workdir, "hydra/launcher=submitit_local")) == 2
    (submitit,) = [s for s in (workdir / "outputs" / "multirun").glob("*/*") if (s / ".submitit").is_dir()]
    (optuna,) = (workdir / "outputs" / "multirun").glob("*/*/optimization_results.yaml")
    best = optuna.read_text()
    assert "best_params" in best and "lr" in best and "best_value" in best
    assert submitit != optuna.parent
