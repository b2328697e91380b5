"""The objects a checked config names, built through the allowlist (`linreg.targets.build`): the DataModule
with its source, the model with its optimizer (or a resumed run's weights), the callbacks, the loggers and the
Trainer. Everything a run writes goes into its own folder: the loggers' and the Trainer's root is `run_dir`.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import lightning as L
import torch
from omegaconf import DictConfig

from linreg.data import RegressionDataModule
from linreg.errors import InvalidInput
from linreg.interrupt import GracefulInterrupt
from linreg.loss_monitor import LossMonitor
from linreg.models import Regression
from linreg.resume import restore_weights
from linreg.targets import build


@dataclass(frozen=True)
class Built:
    """A run's objects, and what its record reads from them."""

    datamodule: RegressionDataModule
    model: Regression
    trainer: L.Trainer
    monitor: LossMonitor  # the loss and divergence
    interrupt: GracefulInterrupt  # SIGINT and SIGTERM
    stages: tuple[str, ...]  # the evaluated splits that have rows: ("val", "test"), fewer with a fraction of 0


def build_run(cfg: DictConfig, run_dir: Path) -> Built:
    """Every object the run needs, from its checked config: the DataModule, the model with seeded initial
    weights (as the notebook's nn-loop cell draws them, or a resumed run's), the callbacks, loggers and Trainer.

    The optimizer is built once here, on the model's parameters, so that a value it refuses (a negative
    momentum, say) is reported before the run starts writing.
    """
    quiet_lightning()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    datamodule: RegressionDataModule = build("data", cfg.data)
    L.seed_everything(cfg.seed, verbose=False)
    optimizer = build("optimizer", cfg.optimizer)
    shape = {"in_features": datamodule.n_features, "out_features": datamodule.n_targets}
    model: Regression = build("model", cfg.model, **shape, optimizer=optimizer)
    model.standardization = datamodule.standardization  # the training split's statistics, saved with the model
    try:
        model.configure_optimizers()
    except (ValueError, TypeError) as error:
        raise InvalidInput(f"optimizer: {cfg.optimizer._target_} refused its arguments: {error}") from None
    callbacks = [build(f"callbacks.{name}", node) for name, node in cfg.callbacks.items()]
    monitor, interrupt = _one_of(callbacks, LossMonitor), _one_of(callbacks, GracefulInterrupt)
    loggers = [build(f"logger.{name}", node, save_dir=str(run_dir)) for name, node in cfg.logger.items()]
    stages = tuple(stage for stage in ("val", "test") if datamodule.has_rows(stage))
    # val_fraction=0: Lightning is never asked to validate an empty split
    no_validation = {} if "val" in stages else {"limit_val_batches": 0}
    trainer: L.Trainer = build(
        "trainer", cfg.trainer, max_steps=cfg.iters, max_epochs=-1, default_root_dir=str(run_dir),
        logger=loggers or False, callbacks=callbacks, **no_validation,
    )  # fmt: skip
    datamodule.require_even_shards(trainer.world_size)
    if cfg.get("resume"):
        restore_weights(model, cfg, datamodule)  # the checkpoint's weights and standardization statistics
    return Built(datamodule, model, trainer, monitor, interrupt, stages)


Wanted = TypeVar("Wanted", bound=L.Callback)


def _one_of(callbacks: list[L.Callback], kind: type[Wanted]) -> Wanted:
    """The run's record reads the loss, divergence and interruption from these callbacks: they are required."""
    found = [callback for callback in callbacks if isinstance(callback, kind)]
    if len(found) != 1:
        raise InvalidInput(
            f"callbacks: {len(found)} {kind.__name__} found; expected exactly one (conf/callbacks/default.yaml), "
            "since results.json is written from it"
        )
    return found[0]


def quiet_lightning() -> None:
    """Lightning's notes that do not apply to this project, silenced for the run's process."""
    # Every run folder is new (linreg.run_folder), holding only Hydra's files: the CSV logger's warning that it
    # "exists and is not empty" never means another run's logs.
    warnings.filterwarnings("ignore", ".*exists and is not empty.*")
    # Lightning sets its loggers to INFO when imported; its "GPU available: False" and tips are noise here.
    for name in ("lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # Data lives in memory: worker processes would only add start-up time.
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    # The loss curve is logged by LossMonitor, not through self.log's log_every_n_steps.
    warnings.filterwarnings("ignore", ".*smaller than the logging interval.*")
    # Resuming mid-epoch is exact: the DataModule skips the batches the epoch already trained on.
    warnings.filterwarnings("ignore", ".*ended before the epoch ended and your dataloader is not resumable.*")
    warnings.filterwarnings("ignore", ".*isinstance\\(treespec, LeafSpec\\)` is deprecated.*")
    # On a machine with SLURM installed, a run started without srun is a plain local run, as intended.
    warnings.filterwarnings("ignore", ".*The `srun` command is available on your system but is not used.*")
