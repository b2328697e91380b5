"""`python scripts/train.py -m resume=<sweep folder>`: a cut sweep continued in place (`linreg.sweep_continuation`)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, continue_cut_sweep, read_json, run_command, train_command, wait_for
from omegaconf import OmegaConf

from linreg.errors import InvalidInput
from linreg.overrides import refuse_bad_overrides
from linreg.sweep_continuation import continued_command, finished_jobs, require_sweep_folder


def _sweep_folder(
    tmp_path: Path, task: list[str], hydra: list[str] | None = None, sweeper: str = "", config: str = "train",
    config_dir: Path | None = None,
) -> Path:  # fmt: skip
    """A sweep folder as Hydra leaves it: `multirun.yaml` with the overrides the sweep was started with, and the
    primary config and config folders it composed its jobs from."""
    folder = tmp_path / "outputs" / "multirun" / "2026-12-07" / "10-00-00.000001"
    folder.mkdir(parents=True)
    sources = [{"path": "hydra.conf", "schema": "pkg", "provider": "hydra"}]
    sources += [{"path": str(REPO / "conf"), "schema": "file", "provider": "main"}]
    if config_dir is not None:
        sources.insert(1, {"path": str(config_dir), "schema": "file", "provider": "command-line"})
    saved = {
        "hydra": {
            "overrides": {"task": task, "hydra": hydra or ["hydra.mode=MULTIRUN"]},
            "job": {"config_name": config},
            "runtime": {"config_sources": sources},
        }
    }
    if sweeper:
        saved["hydra"]["sweeper"] = {"_target_": sweeper}
    OmegaConf.save(OmegaConf.create(saved), folder / "multirun.yaml")
    return folder


def _job(folder: Path, overrides: list[str], status: str) -> Path:
    job = folder / ",".join(overrides)
    (job / ".hydra").mkdir(parents=True)
    OmegaConf.save(OmegaConf.create(overrides), job / ".hydra" / "overrides.yaml")
    (job / "results.json").write_text(f'{{"status": "{status}"}}')
    return job


def test_the_saved_sweep_is_run_again_into_its_own_folder(tmp_path):
    folder = _sweep_folder(tmp_path, ["lr=0.01,0.02", "iters=500"], ["hydra.mode=MULTIRUN", "hydra/launcher=joblib"])
    command = continued_command(["-m", f"resume={folder}", "hydra.launcher.n_jobs=2"])
    assert command == [
        "-m", "lr=0.01,0.02", "iters=500", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
        f"hydra.sweep.dir={folder}", "hydra/sweeper=continuable", f"hydra.sweeper.resume={folder}",
    ]  # fmt: skip
    refuse_bad_overrides(command)  # the rebuilt command passes the command line's checks


def test_where_the_jobs_run_may_change_and_replaces_the_saved_setting(tmp_path):
    saved = ["hydra.mode=MULTIRUN", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]
    folder = _sweep_folder(tmp_path, ["lr=0.01,0.02"], saved)
    command = continued_command(["-m", f"resume={folder}", "hydra/launcher=basic"])
    assert [arg for arg in command if arg.startswith("hydra/launcher=")] == ["hydra/launcher=basic"]
    assert "hydra.launcher.n_jobs=2" not in command  # joblib's setting: the basic launcher has no n_jobs
    kept = continued_command(["-m", f"resume={folder}", "hydra.launcher.n_jobs=1"])
    assert "hydra/launcher=joblib" in kept and [a for a in kept if "n_jobs" in a] == ["hydra.launcher.n_jobs=1"]


def test_a_continued_sweep_that_was_continued_before_is_placed_once(tmp_path):
    placed = ["hydra.mode=MULTIRUN", "hydra.sweep.dir=elsewhere", "hydra.sweeper.resume=elsewhere"]
    folder = _sweep_folder(tmp_path, ["lr=0.01,0.02"], placed)
    command = continued_command(["--multirun", f"resume={folder}"])
    assert command is not None and [arg for arg in command if "elsewhere" in arg or "mode" in arg] == []


@pytest.mark.parametrize("args", [["resume=x"], ["-m", "resume=x"], ["-m", "lr=0.1"]])
def test_commands_that_continue_no_sweep_go_on_as_before(tmp_path, args):
    (tmp_path / "x").mkdir()  # a folder without multirun.yaml: a run folder, resumed as one run per job
    assert continued_command([arg.replace("x", str(tmp_path / "x")) for arg in args]) is None


@pytest.mark.parametrize("extra", ["lr=0.5", "+model.bias=false", "data=csv", "hydra.sweep.subdir=x"])
def test_a_continued_sweep_keeps_what_it_trains(tmp_path, extra):
    folder = _sweep_folder(tmp_path, ["lr=0.01,0.02"])
    with pytest.raises(InvalidInput, match=re.escape("only resume=<sweep folder>") + f".*not {re.escape(extra)}"):
        continued_command(["-m", f"resume={folder}", extra])


@pytest.mark.parametrize("typed", ["hydra.sweeper.resume=outputs/x", "+hydra.sweeper.resume=x"])
def test_the_continued_folder_is_set_only_by_resume(tmp_path, typed):
    """Typed by hand, with other overrides, it would put new job folders into an existing sweep's folder."""
    with pytest.raises(InvalidInput, match=r"set by -m resume=<sweep folder>"):
        continued_command(["-m", "lr=5", "hydra.sweep.dir=outputs/x", typed])


def test_an_optuna_search_is_not_continued_and_says_why(tmp_path):
    folder = _sweep_folder(tmp_path, ["hparams_search=optuna"], sweeper="hydra_plugins.hydra_optuna_sweeper.X")
    with pytest.raises(InvalidInput, match=r"Optuna search.*cannot be continued"):
        continued_command(["-m", f"resume={folder}"])


@pytest.mark.parametrize(
    "content",
    [
        "hydra: [unclosed",
        "hydra:\n  overrides:\n    task: rm -rf\n",
        "hydra:\n  overrides: {task: [{a: 1}]}\n",
        "hydra:\n  overrides: {task: [lr=0.1], hydra: []}\n  job: [1, 2]\n",  # where its config name would be
    ],
)
def test_a_damaged_sweep_record_is_one_line(tmp_path, content):
    folder = _sweep_folder(tmp_path, [])
    (folder / "multirun.yaml").write_text(content)
    with pytest.raises(InvalidInput, match=r"resume: .*multirun\.yaml'"):
        continued_command(["-m", f"resume={folder}"])


@pytest.mark.parametrize(
    "saved",
    [
        "hydra.job.env_set.LD_PRELOAD=/tmp/x.so",
        "hydra.launcher.setup=['touch /tmp/owned']",
        "model._target_=os.system",
        "lr=${oc.env:HOME}",
    ],
)
def test_a_tampered_sweep_record_is_refused_like_the_command_line(tmp_path, saved):
    """The saved overrides are data: the command they rebuild passes the command line's checks before Hydra."""
    task, hydra = (["lr=0.01"], ["hydra.mode=MULTIRUN", saved]) if saved.startswith("hydra") else ([saved], None)
    folder = _sweep_folder(tmp_path, task, hydra)
    command = continued_command(["-m", f"resume={folder}"])
    with pytest.raises(InvalidInput):
        refuse_bad_overrides(command)


@pytest.mark.parametrize("saved", ["--config-dir=/tmp/evil", "-cn", "--multirun", "lr"])
def test_a_saved_sweep_holds_overrides_not_flags(tmp_path, saved):
    """A flag in multirun.yaml would reach Hydra as one: --config-dir loads a folder's files as trusted config."""
    folder = _sweep_folder(tmp_path, ["lr=0.01", saved])
    with pytest.raises(InvalidInput, match=re.escape(f"holds {saved!r}, which is not a key=value override")):
        continued_command(["-m", f"resume={folder}"])


@pytest.mark.parametrize("link", ["job folder", "log file", "checkpoint", "hard link"])
def test_a_link_in_a_sweep_folder_is_refused_before_anything_is_written(tmp_path, link):
    """A tampered sweep folder would send a continued job's writes (its log, its checkpoint) to a victim file."""
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "train.log").write_text("precious")
    folder = _sweep_folder(tmp_path, ["lr=0.01,0.02"])
    job = folder / "lr=0.02"
    if link == "job folder":
        job.symlink_to(victim, target_is_directory=True)
    else:
        (job / "checkpoints").mkdir(parents=True)
        place = job / ("checkpoints/last.ckpt" if link == "checkpoint" else "train.log")
        place.hardlink_to(victim / "train.log") if link == "hard link" else place.symlink_to(victim / "train.log")
    with pytest.raises(InvalidInput, match=r"^resume: '.*' is a (symbolic link|file with another hard link)"):
        continued_command(["-m", f"resume={folder}"])
    assert (victim / "train.log").read_text() == "precious"


def test_the_jobs_left_compose_from_the_configs_the_sweep_started_with(tmp_path):
    """Its primary config (-cn) and extra config folder (--config-dir) are given again, never read from the
    record: the jobs left would otherwise train another experiment than the finished ones, silently."""
    extra = tmp_path / "my_conf"
    extra.mkdir()
    folder = _sweep_folder(tmp_path, ["lr=0.01,0.02"], config="experiment", config_dir=extra)
    same = ["-cn", "experiment", f"--config-dir={extra}", "-m", f"resume={folder}"]
    command = continued_command(same)
    assert command is not None and command[:3] == same[:3]
    assert continued_command(["--config-name=experiment", "-cd", str(extra), "-m", f"resume={folder}"]) is not None
    for other in (
        ["-m", f"resume={folder}"],  # neither
        ["-cn", "experiment", "-m", f"resume={folder}"],  # the folder forgotten
        ["-cn", "experiment", f"--config-dir={tmp_path}", "-m", f"resume={folder}"],  # another folder
        ["-cn", "train", f"--config-dir={extra}", "-m", f"resume={folder}"],  # another config
    ):
        with pytest.raises(InvalidInput) as refused:
            continued_command(other)
        assert "expected the same, for the jobs left to train what the finished ones did" in str(refused.value)
        assert f"python scripts/train.py -cn experiment --config-dir {extra} -m resume={folder}" in str(refused.value)
    plain = _sweep_folder(tmp_path / "plain", ["lr=0.01,0.02"])
    assert continued_command(["-m", f"resume={plain}"]) is not None
    with pytest.raises(InvalidInput, match="composed its jobs from -cn train"):
        continued_command(["-cn", "experiment", "-m", f"resume={plain}"])


def test_only_jobs_that_ended_count_as_finished(tmp_path):
    folder = _sweep_folder(tmp_path, ["lr=0.01,0.02,0.03,0.04"])
    for lr, status in (("0.01", "ok"), ("0.02", "diverged"), ("0.03", "interrupted"), ("0.04", "running")):
        _job(folder, [f"lr={lr}"], status)
    assert finished_jobs(folder) == {frozenset({"lr=0.01"}), frozenset({"lr=0.02"})}


def test_the_continued_folder_must_be_the_sweeps_own(tmp_path):
    folder = _sweep_folder(tmp_path, ["lr=0.01"])
    require_sweep_folder(folder, folder)
    with pytest.raises(InvalidInput, match="not the folder of this sweep"):
        require_sweep_folder(folder, tmp_path / "another")
    with pytest.raises(InvalidInput, match="not the folder of this sweep"):
        require_sweep_folder(tmp_path, tmp_path)  # no multirun.yaml: not a sweep folder


ONE_WORKER = pytest.mark.xdist_group("sweep_continuation")  # the tests that share the uncut run
LAUNCHERS = {"basic": [], "joblib": ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]}


@pytest.fixture(scope="module")
def uncut(tmp_path_factory) -> dict:
    """The record of the job the sweeps below cut, run whole."""
    folder = tmp_path_factory.mktemp("uncut")
    result = train_command(folder, "lr=0.01", "iters=4000", run_dir=folder / "run")
    assert result.returncode == 0, result.stderr
    return read_json(folder / "run" / "results.json")


@ONE_WORKER
@pytest.mark.e2e
@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_a_sweep_cut_by_sigterm_continues_in_place_to_the_numbers_of_an_uncut_run(tmp_path, launcher, uncut):
    command = [sys.executable, str(REPO / "scripts" / "train.py"), "-m", "lr=0.01", "iters=500,4000"]
    process = subprocess.Popen(
        [*command, *LAUNCHERS[launcher]], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,  # a scheduler's SIGTERM reaches every process of the job: joblib's workers too
    )  # fmt: skip
    sweeps = tmp_path / "outputs" / "multirun"

    def started(job: str, status: str = "") -> bool:
        records = [path / job / "results.json" for path in sweeps.glob("*/*")]
        return any(record.exists() and status in record.read_text() for record in records)

    wait_for(lambda: started("iters=500,lr=0.01", '"ok"') and started("iters=4000,lr=0.01"))
    sweep = next(sweeps.glob("*/*"))
    cut = sweep / "iters=4000,lr=0.01"
    time.sleep(1.0)  # into its 4000 steps (about 3 s), so that it leaves a checkpoint to continue from
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=120)
    wait_for(lambda: '"interrupted"' in (cut / "results.json").read_text())  # the job's own graceful stop
    if launcher == "joblib":  # its worker then idles until loky's timeout (300 s), holding the pipes open:
        time.sleep(1)  # the grace period a scheduler gives before its SIGKILL
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode != 0, stderr
    if launcher == "basic":  # the job runs in the sweep's own process, which says how to go on
        assert f"continue the sweep with: python scripts/train.py -m resume={sweep.relative_to(tmp_path)}" in stdout
    finished = sweep / "iters=500,lr=0.01"
    assert read_json(cut / "results.json")["status"] == "interrupted"
    record = continue_cut_sweep(tmp_path, sweep, finished, cut, 4000, *LAUNCHERS[launcher])
    assert record["weight"][0] == pytest.approx(uncut["weight"][0], rel=1e-6, abs=1e-12)
    assert record["bias"] == pytest.approx(uncut["bias"], rel=1e-6, abs=1e-12)
    assert record["val_mse"] == pytest.approx(uncut["val_mse"], rel=1e-6, abs=1e-12)
    if launcher == "basic":  # a job killed after its last checkpoint, before its record: trained again
        whole = read_json(finished / "results.json")
        (finished / "results.json").write_text(json.dumps({"status": "running", "overrides": whole["overrides"]}))
        again = run_command(["scripts/train.py", "-m", f"resume={sweep.relative_to(tmp_path)}"], cwd=tmp_path)
        assert again.returncode == 0, again.stderr
        assert "cut after its last step, before its record; trained again" in again.stdout
        retrained = read_json(finished / "results.json")
        assert retrained["status"] == "ok" and retrained["steps"] == 500 and retrained["resumed_from"] is None
        assert retrained["weight"] == whole["weight"] and retrained["val_mse"] == whole["val_mse"]
