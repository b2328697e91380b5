"""Multiruns as a user starts them: grids, the summary, divergence, failures, TensorBoard. (Optuna, joblib,
submitit and DDP run through the README's commands in test_readme.py.)"""

import csv
import math
import subprocess
import sys

import pytest
from conftest import REPO, hparams_sessions, read_json, run_command, tensorboard_server, train_command
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

# One worker: the tests share module fixtures. Every test runs the real commands in subprocesses.
pytestmark = [pytest.mark.slow, pytest.mark.e2e, pytest.mark.xdist_group("sweeps")]


def sweep(tmp_path, *overrides):
    """`python scripts/train.py -m <overrides>` in `tmp_path`; returns the result and the sweep folder."""
    result = train_command(tmp_path, "-m", *overrides)
    folders = sorted((tmp_path / "outputs" / "multirun").glob("*/*"))
    return result, folders[-1] if folders else None


def summary_rows(sweep_dir):
    with (sweep_dir / "summary.csv").open() as file:
        return list(csv.DictReader(file))


OK_JOBS = ["iters=20,lr=0.01", "iters=20,lr=0.1", "iters=60,lr=0.01", "iters=60,lr=0.1"]


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("grid")
    result, sweep_dir = sweep(cwd, "lr=0.01,0.1,1.0", "iters=20,60")  # lr=1.0 diverges at step 17
    assert result.returncode == 0, result.stderr
    return result, sweep_dir


def test_grid_runs_every_job_in_a_folder_named_by_its_overrides(grid):
    _, sweep_dir = grid
    jobs = sorted(p.name for p in sweep_dir.iterdir() if p.is_dir())
    assert jobs == [f"iters={iters},lr={lr}" for iters in (20, 60) for lr in ("0.01", "0.1", "1.0")]
    for job in OK_JOBS:
        record = read_json(sweep_dir / job / "results.json")
        assert record["status"] == "ok"
        assert f"iters={record['iters']},lr={record['lr']}" == job
        events = EventAccumulator(str(sweep_dir / job))
        events.Reload()
        assert events.Scalars("loss/train")[-1].step == record["iters"]


def test_grid_summary_table_best_first_and_plot(grid):
    result, sweep_dir = grid
    rows = summary_rows(sweep_dir)
    assert len(rows) == 6
    assert [row["status"] for row in rows] == ["ok"] * 4 + ["diverged"] * 2  # diverged jobs last
    assert {
        "job",
        "lr",
        "iters",
        "status",
        "train_loss",
        "val_mse",
        "val_mae",
        "val_r2",
        "w",
        "b",
        "steps",
        "wall_s",
    } <= rows[0].keys()
    val_mse = [float(row["val_mse"]) for row in rows[:4]]
    assert val_mse == sorted(val_mse)
    assert rows[0]["job"] == "iters=60,lr=0.1"
    summary = (sweep_dir / "summary.md").read_text()
    assert summary in result.stdout  # printed when the sweep ends
    best = f"best by val_mse: iters=60,lr=0.1 (val_mse = {float(rows[0]['val_mse']):.8g})"
    assert summary.splitlines()[-1] == best and result.stdout.strip().splitlines()[-1] == best
    png = (sweep_dir / "summary.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000


def test_summarize_rebuilds_an_interrupted_sweep(grid, tmp_path):
    _, finished = grid
    sweep_dir = tmp_path / "sweep"
    subprocess.run(["cp", "-r", str(finished), str(sweep_dir)], check=True)
    for name in ("summary.csv", "summary.md", "summary.png"):
        (sweep_dir / name).unlink()
    killed = sweep_dir / "iters=60,lr=0.01"
    (killed / "results.json").write_text('{"status": "running", "lr": 0.01, "iters": 60}')
    never_started = sweep_dir / "iters=60,lr=0.1"
    (never_started / "results.json").unlink()
    result = run_command(["scripts/summarize.py", str(sweep_dir)], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    statuses = {row["job"]: row["status"] for row in summary_rows(sweep_dir)}
    assert statuses == {
        "iters=20,lr=0.01": "ok",
        "iters=20,lr=0.1": "ok",
        "iters=20,lr=1.0": "diverged",
        "iters=60,lr=0.01": "running",
        "iters=60,lr=0.1": "missing",
        "iters=60,lr=1.0": "diverged",
    }
    assert (sweep_dir / "summary.png").is_file()


def test_the_summary_names_a_tie_shows_zeros_as_zeros_and_marks_divergence(tmp_path):
    """On the notebook's data lr 0.1 and 0.11 both reach a val MSE of exactly 0 (below the limit 0.1198),
    0.01 does not, and 1.0 diverges."""
    result, sweep_dir = sweep(tmp_path, "lr=0.01,0.1,0.11,1.0", "iters=700")
    assert result.returncode == 0, result.stderr
    (sweep_dir / "summary.png").unlink()
    rebuilt = run_command(["scripts/summarize.py", str(sweep_dir)], cwd=tmp_path)
    assert rebuilt.returncode == 0, rebuilt.stderr
    rows = {row["job"]: row for row in summary_rows(sweep_dir)}
    assert rows["iters=700,lr=0.1"]["val_mse"] == rows["iters=700,lr=0.11"]["val_mse"] == "0"
    assert float(rows["iters=700,lr=0.01"]["val_mse"]) > 0
    assert rows["iters=700,lr=1.0"]["status"] == "diverged"
    assert {row["stability_limit"] for row in rows.values()} == {"0.1198"}
    assert list(rows)[-1] == "iters=700,lr=1.0"
    assert (sweep_dir / "summary.md").read_text().splitlines()[-1] == (
        "best by val_mse: iters=700,lr=0.1 (val_mse = 0), tied with iters=700,lr=0.11 (chose the first by job name)"
    )
    record = read_json(sweep_dir / "iters=700,lr=0.1" / "results.json")
    assert record["val_curve"][0][0] == 0 and record["val_curve"][-1] == [700, 0.0]
    from matplotlib.image import imread  # the picture: two panels, the limit drawn in red on the left one

    pixels = imread(sweep_dir / "summary.png")
    assert pixels.shape[:2] == (480, 1200)
    red = (pixels[..., 0] > 0.9) & (pixels[..., 1] < 0.1) & (pixels[..., 2] < 0.1)
    assert red[:, :600].sum() > 100 and red[:, 600:].sum() == 0


def test_summarize_refuses_a_folder_that_is_not_a_sweep(tmp_path):
    result = run_command(["scripts/summarize.py", str(tmp_path / "nope")], cwd=tmp_path)
    assert result.returncode == 2 and "no such folder" in result.stderr


def test_tensorboard_lists_each_job_with_its_hparams(grid):
    _, sweep_dir = grid
    with tensorboard_server(sweep_dir) as api:
        runs = set(api("/data/runs"))
        tags = api("/data/plugin/scalars/tags")
        sessions = hparams_sessions(api)
    jobs = {f"iters={iters},lr={lr}" for iters in (20, 60) for lr in ("0.01", "0.1", "1.0")}
    assert jobs <= runs
    assert all("loss/train" in tags[job] for job in jobs)
    assert set(sessions) == jobs  # diverged jobs too, with NaN metrics
    for job in OK_JOBS:
        session, record = sessions[job], read_json(sweep_dir / job / "results.json")
        assert (session["hparams"]["lr"], session["hparams"]["iters"]) == (record["lr"], record["iters"])
        assert session["metrics"]["loss/val"] == pytest.approx(record["val_mse"], rel=1e-6)


def first_section(tags: set[str]) -> set[str]:
    """The tags TensorBoard shows first: its sections are the tags' prefixes, in alphabetical order."""
    first = min(tag.split("/")[0] for tag in tags)
    return {tag for tag in tags if tag.split("/")[0] == first}


def test_tensorboard_opens_on_the_loss_curves_and_shows_the_fit(grid):
    _, sweep_dir = grid
    jobs = {f"iters={iters},lr={lr}" for iters in (20, 60) for lr in ("0.01", "0.1", "1.0")}
    with tensorboard_server(sweep_dir) as api:
        scalars, images = api("/data/plugin/scalars/tags"), api("/data/plugin/images/tags")
        curves = {
            (job, tag): api(f"/data/plugin/scalars/scalars?run={job}&tag={tag}")
            for job in jobs
            for tag in ("loss/train", "loss/val")
        }
        pictures = {job: api(f"/data/plugin/images/images?run={job}&tag=prediction/fit") for job in jobs}
    for job in jobs:
        tags = set(scalars[job]) | set(images[job])
        assert first_section(tags) == {"loss/train", "loss/val"}, job
        assert "epoch" not in tags and not any(tag.startswith("hp/") for tag in tags)
        assert curves[job, "loss/val"][0][1] == 0  # validated at step 0: every run has a curve
        assert len(pictures[job]) >= 2  # the slider shows the fit settling
        assert pictures[job][0]["step"] == 0
        record = read_json(sweep_dir / job / "results.json")
        assert pictures[job][-1]["step"] == record["steps"]
        train_steps = [step for _, step, _ in curves[job, "loss/train"]]
        assert train_steps[-1] == record["steps"]
        if record["status"] == "diverged":  # drawn up to where it diverged: the last finite loss, then inf
            points = curves[job, "loss/train"]  # TensorBoard serves a non-finite value as a string
            finite = [step for _, step, value in points if isinstance(value, float) and math.isfinite(value)]
            assert finite[-1] == record["diverged_at_step"] - 1 and points[-1][2] in ("Infinity", "NaN")
    fit = (sweep_dir / "iters=60,lr=0.1" / "fit.png").read_bytes()
    assert fit.startswith(b"\x89PNG\r\n\x1a\n")


def test_a_diverging_job_is_a_result_and_the_sweep_goes_on(grid):
    result, sweep_dir = grid  # the sweep exited 0 (the fixture checks it) and ran the jobs after lr=1.0
    diverged = read_json(sweep_dir / "iters=60,lr=1.0" / "results.json")
    assert diverged["status"] == "diverged"
    assert diverged["diverged_at_step"] < 60 and diverged["steps"] == diverged["diverged_at_step"]
    assert diverged["train_loss"] is None  # JSON has no inf: the status says it
    assert "diverged at step" in result.stdout


def test_a_failing_job_is_listed_and_the_sweep_exits_non_zero(tmp_path):
    good = tmp_path / "good.csv"
    good.write_text("x,y\n" + "".join(f"{i},{2 * i}\n" for i in range(10)))
    result, sweep_dir = sweep(tmp_path, "data=csv", f"data.source.path={good},{tmp_path}/missing.csv")
    assert result.returncode == 1
    assert "data.source.path: no such file" in result.stderr and "1 of 2 jobs did not finish" in result.stderr
    statuses = sorted(row["status"] for row in summary_rows(sweep_dir))
    assert statuses == ["failed", "ok"]


def test_an_empty_value_is_refused_with_the_key(tmp_path):
    result, sweep_dir = sweep(tmp_path, "lr=")
    assert result.returncode == 1
    assert "lr: '' is not a number" in result.stderr
    assert [row["status"] for row in summary_rows(sweep_dir)] == ["failed"]
    assert (sweep_dir / "summary.md").read_text().endswith("\nbest by val_mse: none, no job finished with a val_mse\n")


def test_an_unknown_key_is_refused_before_any_job(tmp_path):
    result, sweep_dir = sweep(tmp_path, "lrr=0.1,0.2")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == ["error: lrr: no such key in the config; expected lr=0.1,0.2"]
    assert sweep_dir is None or not [p for p in sweep_dir.iterdir() if p.is_dir()]  # no job started


def test_ddp_inside_a_multirun_is_refused(tmp_path):
    result, _ = sweep(tmp_path, "trainer=ddp", "iters=5")
    assert result.returncode == 1
    assert "DDP cannot run inside a multirun" in result.stderr


def test_two_sweeps_started_together_get_their_own_folders(tmp_path):
    command = [sys.executable, str(REPO / "scripts" / "train.py"), "-m", "iters=2", "trainer.val_check_interval=1"]
    processes = [
        subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(2)
    ]
    assert [p.wait(timeout=300) for p in processes] == [0, 0]
    assert len(list((tmp_path / "outputs" / "multirun").glob("*/*"))) == 2


# scripts/train.py run as a sweep, with each job's count of frozen objects (linreg.cli freezes the imports').
FREEZE_COUNT_PER_JOB = """
import gc, runpy, sys
import linreg.cli
job = linreg.cli.main
def counted(cfg):
    try:
        return job(cfg)
    finally:
        print("frozen", gc.get_freeze_count(), file=sys.stderr)
linreg.cli.main = counted
sys.argv = [sys.argv[1], *sys.argv[2:]]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def test_a_sweep_freezes_the_imports_once_not_each_jobs_garbage(tmp_path):
    """The basic launcher runs every job in one process: freezing again in a later job would keep the earlier
    jobs' garbage for good (the process grew by about 6,000 objects a job)."""
    script = ["-c", FREEZE_COUNT_PER_JOB, str(REPO / "scripts" / "train.py")]
    result = run_command([*script, "-m", "lr=0.01,0.02,0.03", "iters=5", "~callbacks.fit_pictures"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    counts = [int(line.split()[1]) for line in result.stderr.splitlines() if line.startswith("frozen ")]
    assert len(counts) == 3
    assert counts[0] > 100_000  # the imports' objects (Lightning, torch)
    assert counts[2] <= counts[1] <= counts[0]  # none frozen after the first job (frozen objects can still be freed)
