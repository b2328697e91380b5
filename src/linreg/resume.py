"""`resume=<run folder>`: continue an interrupted (or finished) run from its last checkpoint (a cut sweep's jobs:
`linreg.sweep_continuation`).

The run goes on with the config it started with, read from its `.hydra/config.yaml`; only `iters` may be
given anew (to train longer). Its results go into a new run folder: the old one is never overwritten.
The saved config is input like the command line: `linreg.config.check` refuses a `_target_` outside the
allowlist before the checkpoint is opened or anything is built.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException
from yaml import YAMLError

from linreg.config import check, refuse_outside_resolvers
from linreg.errors import InvalidInput
from linreg.record import CHECKPOINT, Status, read_status
from linreg.sweep_continuation import SWEEP_FILE

if TYPE_CHECKING:
    from linreg.data import RegressionDataModule
    from linreg.models import Regression

CHANGEABLE = ("resume", "iters")


class TrainedToItsEnd(InvalidInput):
    """The checkpoint to resume from is already at the run's `iters`: nothing is left to train."""


def run_config(cfg: DictConfig, overrides: Sequence[str] = (), job_dir: Path | None = None) -> DictConfig:
    """The config a run trains with, resolved once and checked (`linreg.config.check`): with `resume=`, that of
    the run it continues. `linreg.cli` calls it before it imports Lightning (about 2 s), so that a bad value
    fails at once.

    `job_dir`: a job of a sweep continued in place (`linreg.sweep_continuation`). It continues from its own
    checkpoint where the cut attempt left one, and starts over in its folder where it did not (or where the cut
    came after its last checkpoint: `TrainedToItsEnd`, and `linreg.cli` starts it over).
    """
    if job_dir is not None:
        if (job_dir / CHECKPOINT).is_file():  # a copy: the job's own config stays, to start it over with
            cfg = resume_config(OmegaConf.merge(cfg, {"resume": str(job_dir)}), ())
    elif cfg.get("resume"):
        cfg = resume_config(cfg, overrides)
    return check(cfg)


def resume_config(cfg: DictConfig, overrides: Sequence[str]) -> DictConfig:
    """The config of the run in `cfg.resume`, with this command's `iters` if it gives one."""
    run_dir = Path(cfg.resume).expanduser()
    saved = run_dir / ".hydra" / "config.yaml"
    if (run_dir / SWEEP_FILE).is_file():
        raise InvalidInput(
            f"resume: '{run_dir}' is a sweep's folder; expected a run folder (one of its jobs), or continue the "
            f"sweep in place with: python scripts/train.py -m resume={run_dir}"
        )
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
    if read_status(run_dir) == Status.DIVERGED:
        raise InvalidInput(f"resume: the run in {run_dir} diverged; expected a new run, with a smaller lr")
    resumed = _saved_config(saved)
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


def _saved_config(saved: Path) -> DictConfig:
    """A run folder's `.hydra/config.yaml`, read as data: a broken or foreign file is one line, and a resolver
    that reaches outside the config (`${oc.env:...}`, `${oc.create:...}`) is refused before anything resolves."""
    try:
        resumed = OmegaConf.load(saved)
    except (OSError, ValueError, YAMLError, OmegaConfBaseException) as error:
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise InvalidInput(
            f"resume: '{saved}' is not a readable config ({reason}); expected the file a run wrote"
        ) from None
    if not isinstance(resumed, DictConfig):
        raise InvalidInput(f"resume: '{saved}' holds no mapping of keys; expected the file a run wrote")
    if "hydra" in resumed:  # Hydra keeps its own settings apart; a run's config never holds them
        raise InvalidInput(f"resume: '{saved}' holds hydra settings; expected the file a run wrote")
    refuse_outside_resolvers(resumed)
    return resumed


def restore_weights(model: Regression, cfg: DictConfig, datamodule: RegressionDataModule) -> None:
    """Load the resumed run's weights into `model`, once its checkpoint is known to fit this run.

    An unsafe, damaged or mismatched file is refused with one line; `fit()` then restores the optimizer and
    the loop counters from the same file.
    """
    from linreg.checkpoint import model_from_checkpoint, read_checkpoint  # torch: after the config checks

    path = Path(cfg.resume) / CHECKPOINT
    checkpoint = read_checkpoint(path)
    reached = int(checkpoint.get("global_step", 0))
    if reached >= cfg.iters:
        raise TrainedToItsEnd(
            f"iters: {cfg.iters}, but the run in {cfg.resume} already reached step {reached}; "
            f"expected more steps to train on, e.g. iters={2 * reached}"
        )
    saved = checkpoint.get("hyper_parameters") or {}
    shape = {"in_features": datamodule.n_features, "out_features": datamodule.n_targets}
    if any(saved.get(key, value) != value for key, value in shape.items()):  # a CSV whose columns changed
        raise InvalidInput(
            f"resume: the run in {cfg.resume} was trained on {saved.get('in_features')} input and "
            f"{saved.get('out_features')} target column(s), but data={datamodule.name} now has "
            f"{shape['in_features']} and {shape['out_features']}; expected the data the run started with"
        )
    model.load_state_dict(model_from_checkpoint(checkpoint, path).state_dict())
