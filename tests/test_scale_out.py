"""Scaling out: what starts DDP's processes (srun, torchrun, a SLURM sweep), and what is refused before training.

The README's torchrun command and SLURM sweeps are run in tests/test_readme_runs.py and test_readme_sweeps.py.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ON_THE_CLUSTER, REPO, compose_config, read_json, run_command, train_command
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from linreg.distributed import Started, external_launch, require_processes
from linreg.errors import InvalidInput

PYTHON_TRAIN = [sys.executable, str(REPO / "scripts" / "train.py")]


def one_error_line(result: subprocess.CompletedProcess) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


@pytest.mark.slow
@pytest.mark.e2e
def test_two_nodes_without_a_cluster_environment_are_refused_before_training(tmp_path):
    result = train_command(tmp_path, "+trainer.num_nodes=2", run_dir=tmp_path / "run")
    assert result.returncode == 2
    assert one_error_line(result).startswith(
        "error: trainer.num_nodes: 2 nodes, but no cluster environment started this process"
    )
    assert "expected torchrun --nnodes=2 on each node, hydra/launcher=slurm, or trainer.num_nodes=1" in result.stderr
    assert not (tmp_path / "run" / "results.json").exists()  # nothing trained, nothing waited for


@pytest.mark.slow
@pytest.mark.e2e
def test_devices_that_differ_from_what_torchrun_started_are_refused(tmp_path):
    torchrun = Path(sys.executable).with_name("torchrun")
    result = subprocess.run(
        [str(torchrun), "--standalone", "--nproc-per-node=1", *PYTHON_TRAIN[1:], "trainer=ddp", "iters=5"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert result.returncode != 0
    expected = (
        "error: trainer.devices: 2 per node x trainer.num_nodes=1 is 2 processes, but torchrun started 1 "
        "(1 per node); expected trainer.devices=1 trainer.num_nodes=1"
    )
    assert expected in result.stderr.splitlines()
    assert not list(tmp_path.glob("outputs/runs/*/*/results.json"))


@pytest.mark.parametrize(
    ("environ", "started"),
    [
        ({}, None),
        ({"TORCHELASTIC_RUN_ID": "none", "WORLD_SIZE": "4", "LOCAL_WORLD_SIZE": "2"}, Started("torchrun", 4, 2)),
        ({"SLURM_STEP_ID": "0", "SLURM_NTASKS": "4", "SLURM_NNODES": "2"}, Started("SLURM", 4, 2)),
        ({"SLURM_JOB_ID": "7", "SLURM_NTASKS": "2"}, None),  # a batch script, not a task that srun started
    ],
)
def test_the_launcher_that_started_the_processes_is_read_from_the_environment(environ, started):
    assert external_launch(environ) == started


def test_a_multi_node_setting_is_accepted_where_a_launcher_started_its_processes():
    trainer = compose_config("trainer=ddp", "trainer.num_nodes=2").trainer
    require_processes(trainer, {"SLURM_STEP_ID": "0", "SLURM_NTASKS": "4", "SLURM_NNODES": "2"})
    require_processes(trainer, {"MASTER_ADDR": "10.0.0.1", "NODE_RANK": "1"})  # Lightning's by-hand cluster
    with pytest.raises(InvalidInput, match="but SLURM started 2 \\(2 per node\\)"):
        require_processes(trainer, {"SLURM_STEP_ID": "0", "SLURM_NTASKS": "2", "SLURM_NNODES": "1"})


def test_the_slurm_launcher_gives_each_job_one_task_per_ddp_process():
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        overrides = ["hydra/launcher=slurm", "trainer=ddp", "trainer.num_nodes=2"]
        launcher = compose("train", overrides=overrides, return_hydra_config=True).hydra.launcher
    assert (launcher.nodes, launcher.tasks_per_node, launcher.cpus_per_task) == (2, 2, 1)
    assert launcher._target_ == "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    assert OmegaConf.select(compose_config("trainer=cpu"), "trainer.num_nodes") is None  # Lightning's default, 1


@pytest.mark.slow
@pytest.mark.e2e
@pytest.mark.parametrize("launcher", ["basic", "joblib"])
def test_ddp_in_a_sweep_is_refused_where_lightning_would_re_run_the_command(tmp_path, launcher):
    result = run_command(
        ["scripts/train.py", "-m", f"hydra/launcher={launcher}", "trainer=ddp", "iters=5"], cwd=tmp_path
    )
    assert result.returncode == 1
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("error: job iters=5,trainer=ddp: ")]
    assert "DDP cannot run inside a multirun" in line and "Lightning #11300" in line
    assert "expected hydra/launcher=slurm, where SLURM starts each job's processes" in line
    (record,) = map(read_json, tmp_path.glob("outputs/multirun/*/*/*/results.json"))
    assert record["status"] == "failed"


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    """The single-process run the distributed ones are compared with."""
    cwd = tmp_path_factory.mktemp("one_process")
    result = train_command(cwd, "lr=0.1", "iters=500", "seed=0", run_dir=cwd / "run")
    assert result.returncode == 0, result.stderr
    return read_json(cwd / "run" / "results.json")


@pytest.mark.slow
@pytest.mark.e2e
@ON_THE_CLUSTER
def test_srun_ddp_run_writes_one_folder_named_by_the_job_and_equals_one_process(slurm_cluster, one_process, tmp_path):
    overrides = ["trainer=ddp", "lr=0.1", "iters=500", "seed=0"]
    result = subprocess.run(
        ["srun", "--nodes=1", "--ntasks-per-node=2", f"--partition={slurm_cluster}", *PYTHON_TRAIN, *overrides],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert result.returncode == 0, result.stderr
    (run,) = (tmp_path / "outputs" / "runs").glob("*/*")  # both tasks, one folder
    assert re.fullmatch(r"slurm-\d+\.0_iters-500_lr-0\.1_seed-0_trainer-ddp", run.name)  # <job>.<step>_<overrides>
    record = read_json(run / "results.json")
    assert record["weight"][0][0] == pytest.approx(one_process["weight"][0][0], abs=1e-5)
    assert record["bias"][0] == pytest.approx(one_process["bias"][0], abs=1e-5)
    assert result.stdout.count("run folder: ") == 1


@pytest.mark.slow
@pytest.mark.e2e
@ON_THE_CLUSTER
def test_a_slurm_job_with_fewer_tasks_than_ddp_processes_fails_in_one_line(slurm_cluster, tmp_path):
    launcher = ["hydra/launcher=slurm", f"hydra.launcher.partition={slurm_cluster}", "hydra.launcher.tasks_per_node=1"]
    result = run_command(["scripts/train.py", "-m", *launcher, "trainer=ddp", "iters=5"], cwd=tmp_path)
    assert result.returncode == 1
    expected = (
        "error: job trainer=ddp: trainer.devices: 2 per node x trainer.num_nodes=1 is 2 processes, "
        "but SLURM started 1 (1 per node); expected trainer.devices=1 trainer.num_nodes=1"
    )
    (record,) = map(read_json, tmp_path.glob("outputs/multirun/*/*/*/results.json"))
    assert record["status"] == "failed" and record["error"] == expected.partition("trainer=ddp: ")[2]
    assert "1 of 1 jobs did not finish" in result.stderr
