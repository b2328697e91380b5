"""`resume=<run folder>`: continue an interrupted (or finished) run from its last checkpoint.

The run goes on with the config it started with, read from its `.hydra/config.yaml`; only `iters` may be
given anew (to train longer). Its results go into a new run folder: the old one is never overwritten.
The saved config is input like the command line: `linreg.config.check` refuses a `_target_` outside the
allowlist before the checkpoint is opened or anything is built.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict

from linreg.errors import InvalidInput
from linreg.results import CHECKPOINT, read_results

CHANGEABLE = ("resume", "iters")


def resume_config(cfg: DictConfig, overrides: Sequence[str]) -> DictConfig:
    """The config of the run in `cfg.resume`, with this command's `iters` if it gives one."""
    run_dir = Path(cfg.resume).expanduser()
    saved = run_dir / ".hydra" / "config.yaml"
    if not (run_dir / CHECKPOINT).is_file() or not saved.is_file():
        raise InvalidInput(
            f"resume: '{run_dir}' is not a run folder; expected one holding {CHECKPOINT} and .hydra/config.yaml"
        )
    keys = {override.split("=", 1)[0].lstrip("+~") for override in overrides}
    changed = sorted(keys - set(CHANGEABLE))
    if changed:
        raise InvalidInput(
            f"resume: a resumed run keeps the config it started with; only iters may change, not {changed[0]}"
        )
    if _status(run_dir) == "diverged":
        raise InvalidInput(f"resume: the run in {run_dir} diverged; expected a new run, with a smaller lr")
    resumed = OmegaConf.load(saved)
    if isinstance(resumed.get("trainer"), DictConfig) and "max_time" in resumed.trainer:
        raise InvalidInput(
            f"resume: the run in {cfg.resume} was limited by trainer.max_time, whose clock is restored with "
            "it and cannot change; expected a new run"
        )
    if "_target_" not in resumed.get("model", {}):
        raise InvalidInput(
            f"resume: '{run_dir}' was trained by an older version of this project (its config names no "
            "model._target_); expected a run folder written by this version"
        )
    with open_dict(resumed):
        resumed.resume = str(run_dir)
        if "iters" in keys:
            resumed.iters = cfg.iters
    return resumed


def _status(run_dir: Path) -> str | None:
    """The status its results.json records, if it has a readable one."""
    try:
        record = read_results(run_dir)
    except (OSError, ValueError):
        return None
    return record.get("status") if isinstance(record, dict) else None
