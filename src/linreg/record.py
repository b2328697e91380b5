"""`results.json`, the record of one run: its schema, statuses and metric names, writing and reading it, and the
lines the terminal shows from it. Every module that writes or reads a record takes these names from here.

Files are written to a temporary name and renamed into place, so a reader (or a crash) never sees half a
file. Non-finite floats become null: JSON has no NaN, and `status` already says the run diverged. This module
imports neither torch nor Lightning: the command line reads records before those imports start.
"""

from __future__ import annotations

import functools
import json
import math
import os
import platform
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from enum import Enum
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, TypedDict

from omegaconf import DictConfig, OmegaConf

from linreg.errors import InvalidInput

RESULTS_FILE = "results.json"
CHECKPOINT = Path("checkpoints") / "last.ckpt"  # the run's last state: weights, optimizer, loop counters


class Status(str, Enum):
    """How a run stands; `results.json` holds the value (`"ok"`), which compares equal to the member."""

    RUNNING = "running"  # written when training starts: what a killed run leaves behind
    OK = "ok"  # trained to `iters`
    STOPPED = "stopped"  # ended early on purpose: an early-stopping callback, the Trainer's max_time
    DIVERGED = "diverged"  # the loss became NaN or infinite: a result, not a crash
    INTERRUPTED = "interrupted"  # SIGINT or SIGTERM; `resume=<run folder>` continues it
    FAILED = "failed"  # a write failed (no space left) or the run was refused; `error` says why
    MISSING = "missing"  # no readable results.json (a sweep's job killed before it wrote one)

    def __str__(self) -> str:
        return self.value


# Runs whose metrics are final: trained to `iters`, or ended early on purpose.
FINISHED = (Status.OK, Status.STOPPED)
SCORES = ("mse", "mae", "r2")
STAGES = ("val", "test")
# What a callback can monitor during training (EarlyStopping, ModelCheckpoint): the model logs each
# validation score as `val/<score>` (linreg.models).
MONITORABLE = tuple(f"val/{score}" for score in SCORES)
# The final metrics, as results.json keys: the training loss (in standardized units if standardized), then
# each stage's scores in the target's units.
METRICS = ("train_loss", *(f"{stage}_{score}" for stage in STAGES for score in SCORES))
# How far the run ended from the best possible (least-squares) fit, and the data's stability limit.
LANDMARKS = ("optimum_mse", "excess_mse", "parameter_distance", "stability_limit")
OBJECTIVES = ("val_mse", "val_mae", "train_loss")  # what a run may return to a sweeper
MAX_PREDICTIONS = 10  # test inputs whose predictions results.json lists


class Record(TypedDict, total=False):
    """Every key of results.json, its type and unit. A key is absent where it cannot exist (the test scores
    with test_fraction=0, `weight` for a model that is not linear); None stands for NaN or infinity.
    Records of older versions lack `provenance`: readers take what is there."""

    status: str  # a Status value
    error: str  # status "failed": what went wrong, one line
    # What the run is, written when it starts
    lr: float  # the learning rate the optimizer got
    iters: int  # optimizer steps asked for
    seed: int  # seeds the initial weights and the mini-batch order
    data: str  # the data source's name: seed, synthetic, csv:<file>
    model: str  # the LightningModule's class name
    optimizer: str  # the torch.optim class name
    batch_size: int  # samples per optimizer step, all processes together
    standardize: bool | str  # trained on standardized inputs and target; "whiten": whitened inputs too
    condition_number: float  # of the design trained on ([x, 1], standardized or whitened if so; [x] without bias)
    processes: int  # DDP processes (1 without DDP)
    overrides: dict[str, str]  # the command line's key=value overrides, as typed
    resumed_from: str | None  # the checkpoint a resumed run started from
    provenance: dict[str, Any]  # git commit and dirty tree, Python and library versions, the command line
    test_inputs: list[list[float]]  # the first test inputs (at most 10), in the data's units
    test_targets: list[list[float]]  # their true values
    predictions_before: list[list[float]]  # the model's predictions for them before training
    # The data's landmarks (linreg.least_squares), in the data's units
    optimum_weight: list[list[float]]  # the least-squares optimum of the training split
    optimum_bias: list[float]  # absent for a model without bias (model.bias=false): the fit goes through 0
    optimum_mse: float  # its MSE on the training split
    standardized_optimum_weight: list[list[float]]  # the optimum in the units trained (when standardized)
    standardized_optimum_bias: list[float]
    stability_limit: float  # the largest lr full-batch SGD converges with (of the standardized data if so)
    above_stability_limit: bool
    # How it ended
    steps: int  # optimizer steps taken
    diverged_at_step: int | None
    interrupted_by: str | None  # SIGINT or SIGTERM
    stopped_by: str | None  # the callback or Trainer argument that stopped it
    stop_reason: str | None
    train_loss: float | None  # the last step's loss, in the units trained
    val_mse: float | None  # final scores in the target's units (val_*, test_*: METRICS)
    val_mae: float | None
    val_r2: float | None
    test_mse: float | None
    test_mae: float | None
    test_r2: float | None
    val_curve: list[list[float]]  # [step, val mse] at every validation
    weight: list[list[float]]  # a linear model's W and b, in the data's units
    bias: list[float]  # absent for a model without bias (model.bias=false)
    standardized_weight: list[list[float]]  # W and b as trained (when standardized; whitened units if whitened)
    standardized_bias: list[float]
    train_mse: float | None  # MSE over the whole training split, in the data's units
    excess_mse: float | None  # train_mse minus the optimum's
    parameter_distance: float | None  # |(W, b) - optimum| in the units trained (linear models)
    predictions: list[list[float]]  # for test_inputs, after training
    checkpoint: str  # relative to the run folder
    fit_s: float  # seconds of training alone
    wall_s: float  # seconds of training, validations, the test and the checkpoint


def write_atomically(path: Path, content: str | bytes) -> None:
    """Replace `path` with `content` in one rename: readers see the old file or the new one, never a mix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)  # mkstemp's 0600 would hide results from the other users of a shared cluster
        with os.fdopen(fd, "wb") as file:
            file.write(content.encode() if isinstance(content, str) else content)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def json_safe(value: Any) -> Any:
    """The value with every NaN or infinity replaced by None, recursively."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    return value


def write(run_dir: Path, record: Record) -> Path:
    """Write `results.json` atomically, NaN and infinity as null; returns its path."""
    path = run_dir / RESULTS_FILE
    write_atomically(path, json.dumps(json_safe(record), indent=2) + "\n")
    return path


def write_failure(run_dir: Path, record: Record, error: str) -> None:
    """Mark the run "failed" after a fault such as a full disk, whatever it takes: a result is whole and true,
    or clearly not one.

    A full disk may refuse even the small temporary file of an atomic write; results.json already exists
    (written when the run started), so it is then overwritten in place, which needs no new space; failing
    that, it is removed rather than left saying "running".
    """
    failed = json.dumps(json_safe({**record, "status": Status.FAILED, "error": error}), indent=2) + "\n"
    path = run_dir / RESULTS_FILE
    try:
        write_atomically(path, failed)
        return
    except OSError:
        pass
    try:
        with path.open("r+") as file:
            file.write(failed)
            file.truncate()
    except OSError:
        path.unlink(missing_ok=True)


def read(run_dir: Path) -> Record:
    """The record in `run_dir`, as any version of this project wrote it; raises OSError or ValueError
    when there is none or it is not JSON (a file of deeply nested brackets included)."""
    path = run_dir / RESULTS_FILE
    try:
        return json.loads(path.read_text())
    except RecursionError:
        raise ValueError(f"{path}: nested too deeply to be a run's record") from None


def read_status(run_dir: Path) -> str | None:
    """The status the run folder's record holds, if it has a readable one."""
    try:
        record = read(run_dir)
    except (OSError, ValueError):
        return None
    return record.get("status") if isinstance(record, dict) else None


def save_config(run_dir: Path, cfg: DictConfig) -> None:
    """Replace the run's `.hydra/config.yaml` (where Hydra keeps it) with the config it really runs with.

    Hydra saves the config it composed; a resumed run runs with the config of the run it resumes instead.
    """
    saved = run_dir / ".hydra" / "config.yaml"
    if saved.is_file():
        write_atomically(saved, OmegaConf.to_yaml(cfg))


def split_overrides(overrides: Sequence[str]) -> dict[str, str]:
    """Hydra's `key=value` override strings as a dict: the columns of a sweep's summary."""
    return dict(override.split("=", 1) for override in overrides if "=" in override)


def refused(run_dir: Path, error: InvalidInput, overrides: Sequence[str]) -> None:
    """A sweep job refused before training: its folder says why, and the sweep goes on."""
    write(run_dir, {"status": Status.FAILED, "error": str(error), "overrides": split_overrides(overrides)})


@functools.cache
def provenance() -> dict[str, Any]:
    """Where the numbers came from: the source's git commit and whether it had uncommitted changes (None
    outside a git checkout), the versions that computed them, and the command line as typed. Once per
    process: a sweep's jobs share it."""
    source = Path(__file__).resolve().parent

    def git(*args: str) -> str | None:
        # no GIT_* variables and no fsmonitor: reading the commit must never run a command of anyone's
        environ = {key: value for key, value in os.environ.items() if not key.startswith("GIT_")}
        command = ["git", "-c", "core.fsmonitor=", *args]
        try:
            done = subprocess.run(command, cwd=source, env=environ, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    changes = git("status", "--porcelain", "--untracked-files=no") if commit else None
    versions = {"python": platform.python_version()}
    for package in ("torch", "lightning", "hydra-core"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = None
    return {
        "git_commit": commit,
        "git_dirty": None if changes is None else bool(changes),
        "versions": versions,
        "command": shlex.join([Path(sys.executable).name, *sys.argv]),
    }


def objective(record: Record, name: str) -> float:
    """The number a sweeper minimises: +inf for a run that diverged or failed, so a search moves on."""
    value = record.get(name)
    return float(value) if record.get("status") in FINISHED and value is not None else math.inf


def summary_lines(record: Record, run_dir: Path) -> list[str]:
    """What the terminal shows at the end: the notebook's f(5) lines (none without a test split), a linear
    model's w and b in the data's units, the loss as trained (standardized units if so), the metrics there are."""
    lines = []
    if record["test_inputs"]:
        x = record["test_inputs"][0]
        label = f"{x[0]:g}" if len(x) == 1 else "[" + ", ".join(f"{v:g}" for v in x) + "]"
        lines += [
            f"Prediction before training: f({label}) = {_fmt(record['predictions_before'][0])}",
            f"Prediction after training: f({label}) = {_fmt(record['predictions'][0])}",
        ]
    if "weight" in record:  # a linear model's learned parameters; other models have none worth printing
        lines.append(_learned_line(record))
    if record["status"] == Status.INTERRUPTED:
        lines.append(
            f"interrupted by {record['interrupted_by']} at step {record['steps']} of {record['iters']}; "
            f"continue with: python scripts/train.py resume={relative_to_cwd(run_dir)}"
        )
    elif record["status"] == Status.DIVERGED:
        lines.append(
            f"diverged at step {record['diverged_at_step']}: the loss became {record['train_loss']}; {_hint(record)}"
        )
    else:
        lines += _finished_lines(record)
    lines.append(f"run folder: {relative_to_cwd(run_dir)}")
    return lines


def _finished_lines(record: Record) -> list[str]:
    lines = []
    if record["status"] == Status.STOPPED:
        lines.append(
            f"stopped by {record['stopped_by']} at step {record['steps']} of {record['iters']}: {record['stop_reason']}"
        )
    units = f" ({_units_trained(record)})" if record.get("standardize") else ""
    metrics = [f"final train loss{units} {_metric(record['train_loss'], '.8f')}"]
    metrics += [f"val mse {_metric(record['val_mse'], '.8f')}"] if "val_mse" in record else []
    metrics += [f"val r2 {_metric(record['val_r2'], '.4f')}"] if "val_r2" in record else []
    lines.append(f"{', '.join(metrics)} after {record['steps']} steps ({record['wall_s']:.2f} s)")
    if "test_mse" in record:  # absent with test_fraction=0
        lines.append(
            f"test mse {_metric(record['test_mse'], '.8f')}, test mae {_metric(record['test_mae'], '.8f')}, "
            f"test r2 {_metric(record['test_r2'], '.4f')} (the test split, scored once)"
        )
    return [*lines, _against_optimum(record)]


def _against_optimum(record: Record) -> str:
    """The run beside the best possible linear fit of its training data (a baseline, for other models)."""
    line = (
        f"train mse {_metric(record['train_mse'], '.3g')} vs the least-squares optimum's "
        f"{_metric(record['optimum_mse'], '.3g')} (excess {_metric(record['excess_mse'], '.3g')}"
    )
    if record.get("parameter_distance") is None:
        return line + "; the linear optimum is this model's baseline)"
    trained = f"{_units_trained(record)} " if record.get("standardize") else ""  # measured where it trained
    return line + f", distance of {trained}w, b from it {record['parameter_distance']:.3g})"


def _units_trained(record: Record) -> str:
    return "whitened" if record.get("standardize") == "whiten" else "standardized"


def limit_line(lr: float, limit: float, standardized: bool = False) -> str:
    """`lr 1.0 is above this data's stability limit 0.1198`: the warning's words and a diverged run's hint;
    the limit of the standardized data when that is what trains (`data.standardize`)."""
    data = "the standardized data's" if standardized else "this data's"
    return f"lr {lr} is above {data} stability limit {limit:.4g} (full-batch gradient descent)"


def _hint(record: Record) -> str:
    """What to try after a divergence: below the data's stability limit, when the lr was above it."""
    limit = record.get("stability_limit")
    if record.get("above_stability_limit") and limit:
        return f"{limit_line(record['lr'], limit, record.get('standardize', False))}; try an lr below it"
    return f"try a smaller lr than {record['lr']}"


def _metric(value: float | None, spec: str) -> str:
    """n/a where a metric does not exist: R2 of one sample, the loss of a run stopped before its first step."""
    return "n/a" if value is None else format(value, spec)


def _learned_line(record: Record) -> str:
    """`w = ..., b = ...` with at least 7 significant digits per coefficient (`b = -3482258.635`), as far as a
    person reads what the run reached; the notebook's data as the notebook printed it (`w = 2.000`), and a
    diverged run's numbers short (they are no result)."""
    short = record.get("data") == "seed" or record.get("status") == Status.DIVERGED
    fmt = _fmt if short else _coefficients
    line = f"w = {fmt(record['weight'])}"
    return line + (f", b = {fmt(record['bias'])}" if "bias" in record else ", no bias (model.bias=false)")


def _coefficients(value: Any) -> str:
    """A coefficient (or nested lists of them) with at least 3 decimals and at least 7 significant digits."""
    if isinstance(value, list):
        return _coefficients(value[0]) if len(value) == 1 else "[" + ", ".join(map(_coefficients, value)) + "]"
    if value is None:
        return "nan"
    if value != 0 and not 1e-4 <= abs(value) < 1e15:
        return f"{value:.6e}"
    magnitude = math.floor(math.log10(abs(value))) if value else 0
    return f"{value:.{max(3, 6 - magnitude)}f}"


def _fmt(value: Any) -> str:
    if isinstance(value, list) and len(value) == 1:  # one output, one feature: print a number
        return _fmt(value[0])
    if isinstance(value, list):
        return "[" + ", ".join(_fmt(item) for item in value) + "]"
    if value is None:
        return "nan"
    return f"{value:.3f}" if abs(value) < 1e6 else f"{value:.3g}"  # a diverged run's 1.83e+20, not 21 digits


def relative_to_cwd(path: Path) -> Path:
    """The path as the user would type it: relative when it is below the working directory."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return path
