"""The README's commands for single runs, run as a user would, in the order the README shows them."""

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, free_port, read_json, tensorboard_server
from readme import README_COMMANDS, README_TEXT, run_readme_commands

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("readme_runs")]  # one worker: shares module fixtures


def is_sweep_command(command: str) -> bool:
    return command.startswith(("python scripts/train.py -m", "python scripts/summarize.py"))


# Run and held to NIST's certified coefficients by tests/test_longley.py, in its own worker.
LONGLEY_COMMANDS = [c for c in README_COMMANDS if "longley.csv" in c]
# Each distinct command once: the README shows `python scripts/tutorial.py all` twice.
# scripts/screenshots.py runs the README's sweep and Chromium: tests/test_screenshots.py runs it on a shorter one.
SCREENSHOTS = "python scripts/screenshots.py"
RUN_COMMANDS = list(
    dict.fromkeys(
        c
        for c in README_COMMANDS
        if c.startswith("python ") and not is_sweep_command(c) and c not in (SCREENSHOTS, *LONGLEY_COMMANDS)
    )
)
TORCHRUN_COMMANDS = [c for c in README_COMMANDS if c.startswith("torchrun ")]


def test_the_readme_shows_the_two_setup_commands_first():
    assert README_COMMANDS[:2] == ["make train", "make test"]
    assert "make test" in (REPO / ".ci" / "run").read_text()


def test_every_readme_command_is_covered():
    others = {"make train", "make test", "tensorboard --logdir outputs", SCREENSHOTS}
    sweeps = [c for c in README_COMMANDS if is_sweep_command(c) or c.startswith("pip install")]  # test_readme_sweeps
    covered = set(RUN_COMMANDS) | set(TORCHRUN_COMMANDS) | set(sweeps) | set(LONGLEY_COMMANDS) | others
    assert set(README_COMMANDS) <= covered


def test_the_readme_model_example_is_the_shipped_code():
    """ "Your own model" shows the MLP's class and YAML file as they are in the project, not a drifted copy."""
    section = README_TEXT.split("## Your own model")[1].split("\n## ")[0]
    (code,) = re.findall(r"```python\n(.*?)```", section, re.S)
    (config,) = re.findall(r"```yaml\n(.*?)```", section, re.S)
    assert code in (REPO / "src" / "linreg" / "models.py").read_text()
    assert config in (REPO / "conf" / "model" / "mlp.yaml").read_text()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("readme_runs")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 2))
    y = x @ [1.0, -1.0] + 0.5
    np.savetxt(cwd / "my.csv", np.column_stack([x, y]), delimiter=",", header="a,b,y", comments="")
    return cwd


@pytest.fixture(scope="module")
def readme(workdir):
    """Every single-run command of the README, run once in its order (later ones use earlier runs)."""
    return run_readme_commands(RUN_COMMANDS, workdir, "runs")


@pytest.mark.parametrize("command", RUN_COMMANDS)
def test_readme_command(command, readme, workdir):
    result, run = readme[command].result, readme[command].folder
    assert result.returncode == 0, f"{command}\n{result.stderr}"
    if command.startswith("python scripts/train.py"):
        record = read_json(run / "results.json")
        assert record["status"] == ("stopped" if "EarlyStopping" in command else "ok")
        assert f"run folder: {run.relative_to(workdir)}" in result.stdout
    if command == "python scripts/train.py lr=0.1 iters=500 seed=0":
        assert "Prediction after training: f(5) = 10.000" in result.stdout
    if "data=csv" in command:  # my.csv: y = a - b + 0.5 exactly; standardized, reported in the data's units
        assert record["standardize"] is True
        np.testing.assert_allclose(record["weight"], [[1.0, -1.0]], atol=1e-4)
        assert record["bias"][0] == pytest.approx(0.5, abs=1e-4)
    if "EarlyStopping" in command:
        assert record["stopped_by"] == "EarlyStopping" and record["steps"] < 1000
    if command.startswith("python scripts/train.py model=mlp"):
        assert (record["model"], record["optimizer"]) == ("MLPRegression", "Adam") and "weight" not in record
    if "logger=[tensorboard,csv]" in command:
        assert (run / "metrics.csv").is_file() and list(run.glob("events.out.tfevents.*"))
    if command.startswith("python scripts/train.py resume="):
        assert read_json(run / "results.json")["steps"] == 2000
    if command.startswith("python scripts/predict.py"):
        assert result.stdout.startswith("f(5) = ")
    if command.startswith("python scripts/tutorial.py"):
        assert "## " in result.stdout


def test_readme_ddp_run_equals_the_single_process_run(readme, workdir):
    records = [read_json(p) for p in (workdir / "outputs" / "runs").glob("*/*/results.json")]
    single = [r for r in records if r["overrides"] == {"lr": "0.1", "iters": "500", "seed": "0"}]
    ddp = [r for r in records if r["overrides"].get("trainer") == "ddp"]
    assert len(single) == len(ddp) == 1
    assert ddp[0]["weight"][0][0] == pytest.approx(single[0]["weight"][0][0], abs=1e-5)
    assert ddp[0]["bias"][0] == pytest.approx(single[0]["bias"][0], abs=1e-5)
    assert ddp[0]["train_loss"] == pytest.approx(single[0]["train_loss"], rel=1e-4, abs=1e-9)


def test_readme_torchrun_command_on_two_nodes_equals_the_single_process_run(readme, workdir, tmp_path):
    """The two-machine command, started twice here (`HEAD=127.0.0.1`): one run, one folder, one process's weights."""
    (command,) = TORCHRUN_COMMANDS
    line = command.replace("$HEAD:29500", f"127.0.0.1:{free_port()}").replace("scripts/", f"{REPO}/scripts/")
    torchrun = [str(Path(sys.executable).with_name("torchrun")), *shlex.split(line)[1:]]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
    nodes = [subprocess.Popen(torchrun, cwd=tmp_path, env=env, **pipes) for _ in range(2)]
    outputs = [node.communicate(timeout=300) for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], outputs
    (run,) = (tmp_path / "outputs" / "runs").glob("*/*")  # both ranks, one run folder
    assert sum(f"run folder: {run.relative_to(tmp_path)}" in out for out, _ in outputs) == 1  # rank 0 prints
    record = read_json(run / "results.json")
    (single,) = [r for r in map(read_json, (workdir / "outputs" / "runs").glob("*/*/results.json"))
                 if r["overrides"] == {"lr": "0.1", "iters": "500", "seed": "0"}]  # fmt: skip
    assert record["status"] == "ok" and record["steps"] == 500
    assert record["weight"][0][0] == pytest.approx(single["weight"][0][0], abs=1e-5)
    assert record["bias"][0] == pytest.approx(single["bias"][0], abs=1e-5)
    assert record["train_loss"] == pytest.approx(single["train_loss"], rel=1e-4, abs=1e-9)


def test_readme_tensorboard_command_serves_the_runs(readme, workdir):
    with tensorboard_server(workdir / "outputs") as api:
        runs = api("/data/runs")
    assert len([run for run in runs if run.startswith("runs/")]) >= 5
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
    # step_cost runs in this interpreter's environment only: .venv-lean (a minute of pip, the recipe that built
    # .venv) is left to the benchmarks that use it, whole_run and sweeps.
    result = subprocess.run(
        ["make", "bench", "LEAN_VENV=.venv", f"ARGS=--quick --only step_cost --out {out}"],
        cwd=REPO, capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "cost per step, seed data, logging on" in result.stdout and "ratio" in result.stdout
    rows = json.loads(out.read_text())["rows"]
    assert {row["name"] for row in rows} >= {"cost per step, seed data, logging on"}
    assert all(row["project"] > 0 and row["baseline"] > 0 for row in rows)
