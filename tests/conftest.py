"""Shared helpers: run the project's commands as a user would (subprocesses) and compose configs in-process."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "scripts"


def run_command(args: list[str], cwd: Path, timeout: float = 300, **env: str) -> subprocess.CompletedProcess:
    """Run `python <args>` (script paths relative to the repo) in `cwd`, as the README shows it."""
    args = [str(REPO / a) if a.startswith("scripts/") else a for a in args]
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONWARNINGS": "ignore", **env},
    )


def train_command(cwd: Path, *overrides: str, run_dir: Path | None = None) -> subprocess.CompletedProcess:
    """`python scripts/train.py <overrides>`; with `run_dir`, Hydra's run folder is put there."""
    extra = [f"hydra.run.dir={run_dir}"] if run_dir else []
    return run_command(["scripts/train.py", *overrides, *extra], cwd=cwd)


def start_train(cwd: Path, *overrides: str) -> subprocess.Popen:
    """`python scripts/train.py <overrides>` started in the background, for tests that signal or kill it."""
    command = [sys.executable, str(SCRIPTS / "train.py"), *overrides]
    return subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


class Answer(NamedTuple):
    """What a command run in-process answered: its exit status and what it printed."""

    code: int
    stderr: str
    stdout: str

    @property
    def returncode(self) -> int:  # subprocess.CompletedProcess's name: one check serves both ways of running
        return self.code


def script_in_process(script: str, cwd: Path, *args: str, **env: str) -> Answer:
    """`python <script> <args>` in `cwd`, run in this test process: the real entry point (`runpy`, as
    `__main__`) with no new interpreter, so no second import of torch and Lightning.

    What a command's process would throw away on exit is undone here: the working directory, sys.argv, the
    environment (HYDRA_FULL_ERROR, which scripts/train.py sets, and Lightning's PL_GLOBAL_SEED), garbage
    collection (scripts/train.py turns it off at import), Hydra's global state, the logging handlers Hydra
    configures, the signal handlers, torch's thread count and random state, and the warnings filters.
    Warnings are ignored, as `run_command` does. An uncaught exception is a traceback and exit status 1.
    """
    import gc
    import io
    import logging
    import random
    import runpy
    import signal
    import traceback
    import warnings

    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig

    fresh_process_state()
    stdout, stderr = io.StringIO(), io.StringIO()
    argv, workdir, environ = sys.argv, os.getcwd(), dict(os.environ)
    gc_enabled = gc.isenabled()
    root = logging.getLogger()
    root_handlers, root_level = list(root.handlers), root.level
    signals = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    torch = sys.modules.get("torch")
    threads, torch_rng = (torch.get_num_threads(), torch.random.get_rng_state()) if torch else (None, None)
    python_rng = random.getstate()
    code = 0
    try:
        os.environ.update(env)
        os.chdir(cwd)
        sys.argv = [str(REPO / script), *args]
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                runpy.run_path(sys.argv[0], run_name="__main__")
            except SystemExit as exit_:
                if exit_.code is None or isinstance(exit_.code, int):
                    code = exit_.code or 0
                else:  # sys.exit("message"): printed, status 1
                    print(exit_.code, file=sys.stderr)
                    code = 1
            except Exception:
                traceback.print_exc()
                code = 1
    finally:
        sys.argv = argv
        os.chdir(workdir)
        os.environ.clear()
        os.environ.update(environ)
        if gc_enabled:
            gc.enable()
        for handler in root.handlers:
            if handler not in root_handlers:
                handler.close()  # Hydra's log file in the run folder
        root.handlers[:], root.level = root_handlers, root_level
        for signum, handler in signals.items():
            signal.signal(signum, handler)
        torch = sys.modules.get("torch")
        if torch and threads is not None:
            torch.set_num_threads(threads)
            torch.random.set_rng_state(torch_rng)
        random.setstate(python_rng)
        GlobalHydra.instance().clear()
        HydraConfig.instance().cfg = None
        fresh_process_state()
    return Answer(code, stderr.getvalue(), stdout.getvalue())


def fresh_process_state() -> None:
    """What linreg keeps for the life of a process, as a new process has it: the launch time that names the
    run folder (cached: two runs in one test get different folders), the folder claimed by this process, and
    the allowlist's additions taken from the environment when the command started."""
    from hydra.core.global_hydra import GlobalHydra

    from linreg import distributed, run_folder, targets

    GlobalHydra.instance().clear()
    distributed.launch_time.cache_clear()
    run_folder._claimed.clear()
    targets._frozen_additions = None


def train_in_process(cwd: Path, *overrides: str, run_dir: Path | None = None) -> Answer:
    """`python scripts/train.py <overrides>` in `cwd`, run in this process (`script_in_process`)."""
    extra = [f"hydra.run.dir={run_dir}"] if run_dir else []
    return script_in_process("scripts/train.py", cwd, *overrides, *extra)


def wait_for(predicate: Callable[[], bool], timeout: float = 120) -> None:
    """Poll until `predicate()` holds; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


def compose_config(*overrides: str) -> DictConfig:
    """The config `scripts/train.py` would run with these overrides (no Hydra run folder)."""
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return compose(config_name="train", overrides=list(overrides))


def continue_cut_sweep(cwd: Path, sweep: Path, finished: Path, cut: Path, steps: int, *launcher: str) -> dict:
    """`python scripts/train.py -m resume=<sweep>` on a sweep cut after `finished` ended and while `cut` trained:
    the finished job's folder is left as it was, the cut job ends its `steps` from its own checkpoint, and the
    summary lists each job once. Returns the cut job's record."""
    untouched, record_bytes = snapshot(finished), (finished / "results.json").read_bytes()
    continued = run_command(["scripts/train.py", "-m", f"resume={sweep.relative_to(cwd)}", *launcher], cwd=cwd)
    assert continued.returncode == 0, continued.stderr
    assert "1 of 2 jobs finished and stay as they are; running the other 1" in continued.stdout
    assert snapshot(finished) == untouched and (finished / "results.json").read_bytes() == record_bytes
    record = read_json(cut / "results.json")
    assert record["status"] == "ok" and record["steps"] == steps
    assert record["resumed_from"] == str(cut / "checkpoints" / "last.ckpt")
    with (sweep / "summary.csv").open() as table:
        assert sorted(row["job"] for row in csv.DictReader(table)) == sorted([finished.name, cut.name])
    return record


def snapshot(folder: Path) -> dict[str, float]:
    """Every file under `folder` with its modification time, to prove a failed command touched nothing."""
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}


@pytest.fixture(scope="session")
def seed_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess, Path]:
    """`python scripts/train.py lr=0.1`, run once for the tests that read what it wrote."""
    cwd = tmp_path_factory.mktemp("seed_run")
    result = train_command(cwd, "lr=0.1")
    assert result.returncode == 0, result.stderr
    (run_dir,) = (cwd / "outputs" / "runs").glob("*/*")
    return result, run_dir


SLURM_CLUSTER = REPO / "scripts" / "slurm_cluster.sh"
# Every test of the SLURM cluster runs on one worker (xdist loadgroup), which starts the cluster once.
ON_THE_CLUSTER = pytest.mark.xdist_group("slurm")


def in_ci() -> bool:
    """CI sets CI=true: there the SLURM cluster must start, and a test that needs it fails rather than skips."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[str]:
    """The real one-node SLURM cluster of scripts/slurm_cluster.sh; yields its partition.

    Started here unless it is up already, and then stopped here. Outside CI, a cluster that does not start,
    for whatever reason (not root: exit status 77; no package, no network for apt, a slurm.conf that is not
    ours), skips the tests with the script's reason. CI (CI=true) runs as root and must never skip them: there
    the same failure fails the test.
    """
    was_up = subprocess.run([str(SLURM_CLUSTER), "status"], capture_output=True).returncode == 0
    try:
        started = subprocess.run([str(SLURM_CLUSTER), "start"], capture_output=True, text=True, timeout=600)
        code, reason = started.returncode, started.stderr.strip() or f"exit status {started.returncode}"
    except (OSError, subprocess.TimeoutExpired) as error:
        code, reason = None, str(error)
    if code != 0:
        why = f"scripts/slurm_cluster.sh start failed: {reason}"
        if in_ci():
            pytest.fail(f"{why} (under CI the SLURM tests must run, not skip)", pytrace=False)
        pytest.skip(f"no SLURM cluster on this machine: {why}")
    yield "debug"
    if not was_up:
        subprocess.run([str(SLURM_CLUSTER), "stop"], capture_output=True, timeout=120)


# The fast tier (`pytest -m "not e2e"`) holds no test that starts a process: each test file marks its own with
# `pytest.mark.e2e`, and this hook marks any it missed, read from the code the test runs. A test, its fixtures
# and the helpers under tests/ they call, followed name by name, start a process when any of them uses the
# subprocess module (run_command, train_command, start_train, tensorboard_server and the slurm_cluster fixture
# all do).
TESTS = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def tensorboard_server(logdir: Path, command: list[str] | None = None, cwd: Path | None = None) -> Iterator[Any]:
    """A real `tensorboard` server on 127.0.0.1 for `logdir`; yields `api(path, body=None)` for its JSON.

    `command`: how it is started instead of `tensorboard --logdir <logdir>` (`scripts/open_tensorboard.py`, say)."""
    port = free_port()
    tensorboard = Path(sys.executable).with_name("tensorboard")
    command = command or [str(tensorboard), "--logdir", str(logdir)]
    process = subprocess.Popen(
        [*command, "--host", "127.0.0.1", "--port", str(port)],
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )

    def api(path: str, body: dict | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}{path}", data=data, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                api("/data/runs")
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"tensorboard did not start: {process.stderr.read()}") from None
                time.sleep(0.5)
        yield api
    finally:
        process.terminate()
        process.wait(timeout=30)


def hparams_sessions(api: Callable[..., Any]) -> dict[str, dict[str, Any]]:
    """Each run's hyperparameters and final metrics, as the HPARAMS tab reads them."""
    groups = api(
        "/data/plugin/hparams/session_groups",
        {
            "experimentName": "",
            "allowedStatuses": ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"],
            "colParams": [],
            "startIndex": 0,
            "sliceSize": 1000,
        },
    )["sessionGroups"]
    return {
        group["name"]: {
            "hparams": group["hparams"],
            "metrics": {m["name"]["tag"]: m.get("value") for m in group["metricValues"]},
        }
        for group in groups
    }
