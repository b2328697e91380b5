"""The sweep commands of the README and docs/, run as a user would, in the pages' order, each held to the
summary it wrote and to the output the page shows."""

import csv
import importlib.metadata
import math
import re
import shlex
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ON_THE_CLUSTER, REPO, read_json
from readme import README_COMMANDS, SHORTER, run_readme_commands, shown_output

ONE_WORKER = pytest.mark.xdist_group("readme_sweeps")  # the tests that share the module fixture `readme`

# A cut sweep's continuation needs a cut sweep: tests/test_sweep_continuation.py cuts one and continues it.
CONTINUE = "python scripts/train.py -m resume=outputs/multirun/<date>/<time>"
SWEEPS = [
    c
    for c in README_COMMANDS
    if c.startswith(("python scripts/train.py -m", "python scripts/summarize.py")) and c != CONTINUE
]
SWEEP_COMMANDS = [c for c in SWEEPS if "hydra/launcher=slurm" not in c]
SLURM_COMMANDS = [c for c in SWEEPS if "hydra/launcher=slurm" in c]
INSTALL_COMMANDS = [c for c in README_COMMANDS if c.startswith("pip install")]


@pytest.mark.e2e
@pytest.mark.slow
def test_the_readme_installs_the_optuna_extra_which_make_test_installed():
    """The README's install command names the extra that holds the Optuna sweeper; in `make test`'s environment
    pip's dry run of it finds nothing to install but the project itself (so the Optuna sweep below ran with
    what that command installs)."""
    (command,) = INSTALL_COMMANDS
    requirements = importlib.metadata.requires("linreg")
    assert any(r.startswith("hydra-optuna-sweeper") and 'extra == "optuna"' in r for r in requirements)
    assert shlex.split(command) == ["pip", "install", "-e", ".[optuna]"]
    result = subprocess.run(
        [sys.executable, "-m", *shlex.split(command), "--dry-run"], cwd=REPO, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    would_install = [line for line in result.stdout.splitlines() if line.startswith("Would install")]
    assert [line.split()[2:] for line in would_install] in ([], [["linreg-0.1.0"]]), result.stdout


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("readme_sweeps")


@pytest.fixture(scope="module")
def readme(workdir):
    """Every sweep command of the README, run once in its order (summarize.py reads the grid before it)."""
    return run_readme_commands(SWEEP_COMMANDS, workdir, "multirun")


def jobs_of(command: str) -> int:
    """How many jobs a sweep command runs: the product of its comma-separated values (Optuna: the trials)."""
    if "hparams_search=optuna" in command:
        return int(SHORTER[command][0].split("=")[1])
    return math.prod(len(arg.split("=", 1)[1].split(",")) for arg in shlex.split(command)[3:] if "," in arg)


def summary_rows(sweep: Path) -> list[dict]:
    with (sweep / "summary.csv").open() as file:
        return list(csv.DictReader(file))


GRID = "python scripts/train.py -m lr=0.001,0.01,0.1,1.0 iters=100,1000"
MODELS = "python scripts/train.py -m model=linear,mlp optimizer=sgd,adam lr=0.01,0.1"
SEEDS = "python scripts/train.py -m data=synthetic data.batch_size=8 lr=0.05,0.06 seed=0,1,2 iters=200"
# The README names it, docs/performance.md shows it: the README grid's jobs with iters=100, batched
BATCHED = "python scripts/train.py -m hydra/launcher=batched lr=0.001,0.01,0.1 iters=100"


def printed_summary(stdout: str) -> list[str]:
    """The lines a sweep prints after its jobs: the summary that summary.md keeps."""
    return stdout.split("/summary.md:\n", 1)[1].rstrip("\n").splitlines()


@pytest.mark.e2e
@pytest.mark.slow
@ONE_WORKER
@pytest.mark.parametrize("command", SWEEP_COMMANDS)
def test_readme_sweep_command(command, readme, workdir):
    result, sweep = readme[command].result, readme[command].folder
    assert result.returncode == 0, f"{command}\n{result.stderr}"
    assert (sweep / "summary.csv").is_file() and (sweep / "summary.png").is_file()
    rows = summary_rows(sweep)
    last = result.stdout.strip().splitlines()[-1]
    if command.startswith("python scripts/train.py -m"):
        assert readme[command].new_folder and "sweep summary" in result.stdout
        assert len(rows) == jobs_of(command) and {row["status"] for row in rows} <= {"ok", "diverged"}
        assert last == (sweep / "summary.md").read_text().splitlines()[-1]  # the table's last line names the best
        assert max(len(line) for line in printed_summary(result.stdout)) <= 120  # a normal terminal, no wrapping
    if command == GRID:
        assert [last] == shown_output(GRID)  # the winner the README shows
        assert {row["job"]: row["status"] for row in rows if row["lr"] == "1.0"} == {
            "iters=100,lr=1.0": "diverged", "iters=1000,lr=1.0": "diverged"
        }  # fmt: skip
        assert {row["stability_limit"] for row in rows} == {"0.1198"}  # the dotted line the README's plot shows
    if command == MODELS:
        jobs = {(row["model"], row["optimizer"], row["lr"]) for row in rows}  # the swept choices, once each
        assert jobs == {(m, o, lr) for m in ("linear", "mlp") for o in ("sgd", "adam") for lr in ("0.01", "0.1")}
        job = re.escape(rows[0]["job"])  # the table's first row, alone or as the pick among ties
        summary = printed_summary(result.stdout)
        answer = " ".join(line.strip() for line in summary[next(i for i, x in enumerate(summary) if "best by" in x) :])
        assert re.fullmatch(
            rf"best by val_mse: {job} \(val_mse = \S+\)(, tied with .* \(chose the first by job name\))?", answer
        )
        assert all(bool(row["w"]) == (row["model"] == "linear") for row in rows)  # w only where linear
    if command == SEEDS:  # seeds as repeats: the grouped summary the README shows, and every metric per lr
        shown = shown_output(SEEDS)
        assert printed_summary(result.stdout)[-len(shown) :] == shown
        with (sweep / "summary_by_config.csv").open() as file:
            configs = {row["lr"]: row for row in csv.DictReader(file)}
        assert {lr: (row["n"], row["diverged"]) for lr, row in configs.items()} == {
            "0.05": ("3", "0"),
            "0.06": ("3", "0"),
        }
        for lr, config in configs.items():
            values = [float(row["val_mse"]) for row in rows if row["lr"] == lr]
            assert float(config["val_mse_mean"]) == pytest.approx(statistics.mean(values), rel=1e-6)
            assert float(config["val_mse_std"]) == pytest.approx(statistics.stdev(values), rel=1e-6)
    if command == BATCHED:  # jobs of the README's grid again, batched: each outcome equal to the basic launcher's
        basic = {row["job"]: row for row in summary_rows(readme[GRID].folder)}
        for row in rows:
            assert (row["status"], row["val_mse"], row["w"], row["b"]) == tuple(
                basic[row["job"]][key] for key in ("status", "val_mse", "w", "b")
            ), row["job"]
    if command.startswith("python scripts/summarize.py"):  # the newest sweep before it: the models' sweep
        assert not readme[command].new_folder and sweep == readme[MODELS].folder
        assert last == f"wrote summary.csv, summary.md and summary.png in {sweep.relative_to(workdir)}"
        assert result.stdout.strip().splitlines()[-2] == (sweep / "summary.md").read_text().splitlines()[-1]
        assert len(rows) == jobs_of(MODELS)


@pytest.fixture(scope="module")
def slurm_readme(slurm_cluster, tmp_path_factory):
    """The README's SLURM sweeps, run for real on the local cluster (partition `debug`)."""
    cwd = tmp_path_factory.mktemp("readme_slurm")
    return cwd, run_readme_commands(SLURM_COMMANDS, cwd, "multirun")


def test_the_readme_shows_a_slurm_sweep_and_a_slurm_ddp_sweep():
    assert len(SLURM_COMMANDS) == 2 and "trainer=ddp" in SLURM_COMMANDS[1]
    assert SLURM_COMMANDS[1].replace(" trainer=ddp", "") == SLURM_COMMANDS[0]  # the same jobs, one process each


@pytest.mark.e2e
@pytest.mark.slow
@ON_THE_CLUSTER
@pytest.mark.parametrize("command", SLURM_COMMANDS)
def test_readme_slurm_sweep_runs_on_the_cluster(command, slurm_readme):
    _, readme = slurm_readme
    result, sweep = readme[command].result, readme[command].folder
    assert result.returncode == 0, f"{command}\n{result.stderr}"
    jobs = sorted(p.parent.name for p in sweep.glob("*/results.json"))
    assert len(jobs) == 2 and all(read_json(sweep / job / "results.json")["status"] == "ok" for job in jobs)
    with (sweep / "summary.csv").open() as file:
        assert sorted(row["job"] for row in csv.DictReader(file)) == jobs  # each job listed once
    assert "sweep summary" in result.stdout and result.stdout.strip().splitlines()[-1].startswith("best by val_mse:")
    # one SLURM job per sweep job, submitted through sbatch: submitit's folder holds each job's task logs
    assert len(list((sweep / ".submitit").glob("*_[0-9]/*_0_log.out"))) == 2
    # submitit's polling: sacct fails here (no accounting), said once instead of twice per poll
    polling = [line for line in (result.stdout + result.stderr).splitlines() if "sacct" in line or "accounting" in line]
    assert len(polling) == 1, polling


@pytest.mark.e2e
@pytest.mark.slow
@ON_THE_CLUSTER
def test_readme_slurm_ddp_jobs_equal_the_one_process_jobs(slurm_readme):
    """Each DDP job is one SLURM job of two tasks (ranks from SLURM): rank 0 alone writes, same weights."""
    _, readme = slurm_readme
    single, ddp = (readme[command].folder for command in SLURM_COMMANDS)
    for job in (p.parent.name for p in single.glob("*/results.json")):
        one, two = read_json(single / job / "results.json"), read_json(ddp / f"{job},trainer=ddp" / "results.json")
        assert two["weight"][0][0] == pytest.approx(one["weight"][0][0], abs=1e-5)
        assert two["bias"][0] == pytest.approx(one["bias"][0], abs=1e-5)
        assert two["train_loss"] == pytest.approx(one["train_loss"], rel=1e-4, abs=1e-9)
        events = list((ddp / f"{job},trainer=ddp").glob("events.out.tfevents.*"))
        assert events and len({p.name.split(".")[4] for p in events}) == 1  # one process (rank 0) wrote events
    tasks = sorted(p.name.split("_")[2] for p in (ddp / ".submitit").glob("*_[0-9]/*_log.out"))
    assert tasks == ["0", "0", "1", "1"]  # two SLURM tasks per job
    single_tasks = sorted(p.name.split("_")[2] for p in (single / ".submitit").glob("*_[0-9]/*_log.out"))
    assert single_tasks == ["0", "0"]


def _sweep_weights(cwd: Path, command_part: str) -> dict[str, list]:
    """The learned weights per job of the README sweep whose command contains `command_part`."""
    for sweep in (cwd / "outputs" / "multirun").glob("*/*"):
        if (sweep / "multirun.yaml").is_file() and command_part in (sweep / "multirun.yaml").read_text():
            return {p.parent.name: read_json(p)["weight"] for p in sweep.glob("*/results.json")}
    raise AssertionError(f"no sweep ran with {command_part}")


@pytest.mark.e2e
@pytest.mark.slow
@ONE_WORKER
def test_readme_joblib_sweep_equals_the_sequential_one(readme, workdir):
    parallel = _sweep_weights(workdir, "hydra/launcher=joblib")
    sequential = _sweep_weights(workdir, "lr=0.001,0.01,0.1,1.0")
    assert len(parallel) == 6 and parallel == {job: sequential[job] for job in parallel}


@pytest.mark.e2e
@pytest.mark.slow
@ONE_WORKER
def test_readme_submitit_and_optuna_sweeps_ran_their_engines(readme, workdir):
    assert len(_sweep_weights(workdir, "hydra/launcher=submitit_local")) == 2
    (submitit,) = [s for s in (workdir / "outputs" / "multirun").glob("*/*") if (s / ".submitit").is_dir()]
    (optuna,) = (workdir / "outputs" / "multirun").glob("*/*/optimization_results.yaml")
    best = optuna.read_text()
    assert "best_params" in best and "lr" in best and "best_value" in best
    assert submitit != optuna.parent
    search = readme["python scripts/train.py -m hparams_search=optuna"].result
    assert "setup plugin" not in search.stdout + search.stderr  # alembic's INFO lines, imported with Optuna
