"""Every command the README shows, run as a user would run it, in the order it shows them."""

import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, read_json, run_command, tensorboard_server
from hydra import compose, initialize_config_dir

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


def test_readme_joblib_sweep_equals_the_sequential_one(workdir):
    parallel = _sweep_weights(workdir, "hydra/launcher=joblib")
    sequential = _sweep_weights(workdir, "lr=0.001,0.01,0.1,1.0")
    assert len(parallel) == 6 and parallel == {job: sequential[job] for job in parallel}


def test_readme_submitit_and_optuna_sweeps_ran_their_engines(workdir):
    assert len(_sweep_weights(workdir, "hydra/launcher=submitit_local")) == 2
    (submitit,) = [s for s in (workdir / "outputs" / "multirun").glob("*/*") if (s / ".submitit").is_dir()]
    (optuna,) = (workdir / "outputs" / "multirun").glob("*/*/optimization_results.yaml")
    best = optuna.read_text()
    assert "best_params" in best and "lr" in best and "best_value" in best
    assert submitit != optuna.parent


def test_readme_ddp_run_equals_the_single_process_run(workdir):
    records = [read_json(p) for p in (workdir / "outputs" / "runs").glob("*/*/results.json")]
    single = [r for r in records if r["overrides"] == {"lr": "0.1", "iters": "500", "seed": "0"}]
    ddp = [r for r in records if r["overrides"].get("trainer") == "ddp"]
    assert len(single) == len(ddp) == 1
    assert ddp[0]["weight"][0][0] == pytest.approx(single[0]["weight"][0][0], abs=1e-5)
    assert ddp[0]["bias"][0] == pytest.approx(single[0]["bias"][0], abs=1e-5)
    assert ddp[0]["train_loss"] == pytest.approx(single[0]["train_loss"], rel=1e-4, abs=1e-9)


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


def test_make_bench_quick_prints_ratios_and_writes_json(tmp_path):
    out = tmp_path / "bench.json"
    result = subprocess.run(
        ["make", "bench", f"ARGS=--quick --only step_cost --out {out}"], cwd=REPO, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert "cost per step, seed data, logging on" in result.stdout and "ratio" in result.stdout
    rows = json.loads(out.read_text())["rows"]
    assert {row["name"] for row in rows} >= {"cost per step, seed data, logging on"}
    assert all(row["project"] > 0 and row["baseline"] > 0 for row in rows)
