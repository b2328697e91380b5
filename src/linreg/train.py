"""One training run: check the config, build what it names, fit, evaluate, and record what happened.

Everything is built from the config (`linreg.targets.build`, allowed classes only): the DataModule with its
source (`data`), the model with its optimizer (`model`, `optimizer`), the callbacks, the loggers and the
Trainer. Everything a run writes goes into its own folder (Hydra's run or job folder, never the working
directory): logger files, `checkpoints/last.ckpt` and `results.json`; Hydra adds the composed config
under `.hydra/`.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import lightning as L
import torch
from lightning.pytorch.loggers import Logger, TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from linreg.checkpoint import load_model
from linreg.config import check
from linreg.data import RegressionDataModule
from linreg.errors import InvalidInput
from linreg.interrupt import GracefulInterrupt
from linreg.loss_monitor import LossMonitor
from linreg.models import Regression
from linreg.results import CHECKPOINT, split_overrides, write_results
from linreg.resume import resume_config
from linreg.targets import build

MAX_PREDICTIONS = 10  # test inputs whose predictions results.json lists


def train(cfg: DictConfig, run_dir: Path, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Fit what the config describes, write `results.json` into `run_dir` and return its content.

    `overrides` are the command line's `key=value` strings: each becomes a column of the HPARAMS tab and
    of a sweep's summary. The status is "ok", "stopped" (a callback or a Trainer argument ended training
    before `iters`), "diverged" (the loss became NaN or infinite) or "interrupted" (SIGINT or SIGTERM;
    `resume=<run folder>` continues it).
    """
    cfg = resume_config(cfg, overrides) if cfg.get("resume") else cfg
    check(cfg)
    run_dir = Path(run_dir)
    _quiet_lightning()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    datamodule: RegressionDataModule = build("data", cfg.data)
    model = _build_model(cfg, datamodule)
    callbacks = [build(f"callbacks.{name}", node) for name, node in cfg.callbacks.items()]
    monitor, interrupt = _one_of(callbacks, LossMonitor), _one_of(callbacks, GracefulInterrupt)
    loggers = [build(f"logger.{name}", node, save_dir=str(run_dir)) for name, node in cfg.logger.items()]
    trainer: L.Trainer = build(
        "trainer", cfg.trainer, max_steps=cfg.iters, max_epochs=-1, default_root_dir=str(run_dir),
        logger=loggers or False, callbacks=callbacks,
    )  # fmt: skip
    record = _started_record(cfg, datamodule, model, overrides)
    if is_global_zero():
        write_results(run_dir, record)  # "running": what a killed run leaves behind

    started = time.perf_counter()
    with _expected_warnings_silenced():
        resume_from = Path(cfg.resume) / CHECKPOINT if cfg.get("resume") else None
        trainer.fit(model, datamodule=datamodule, ckpt_path=resume_from, weights_only=True)
        fit_s = time.perf_counter() - started
        diverged = monitor.diverged_at_step is not None
        val = {} if diverged else trainer.validate(model, datamodule=datamodule, verbose=False)[0]
    trainer.save_checkpoint(run_dir / CHECKPOINT, weights_only=False)  # with optimizer and loop state, to resume

    record.update(
        status=_status(trainer, cfg.iters, monitor, interrupt),
        interrupted_by=interrupt.received.name if interrupt.received else None,
        stopped_by=_stopped_by(trainer) if trainer.global_step < cfg.iters else None,
        steps=trainer.global_step,
        diverged_at_step=monitor.diverged_at_step,
        train_loss=monitor.last_loss,
        val_mse=val.get("val/mse"),
        val_mae=val.get("val/mae"),
        val_r2=val.get("val/r2"),
        **model.learned_parameters(),
        predictions=_predict(model, datamodule.splits.test.x[:MAX_PREDICTIONS]),
        checkpoint=str(CHECKPOINT),
        fit_s=round(fit_s, 4),  # training alone: the figure for throughput
        wall_s=round(time.perf_counter() - started, 4),  # training, the final validation and the checkpoint
    )
    for logger in trainer.loggers:
        _log_hparams_with_final_metrics(logger, _flat_hparams(record, cfg), _final_metrics(record))
    if trainer.is_global_zero:
        write_results(run_dir, record)
    return record


def _build_model(cfg: DictConfig, datamodule: RegressionDataModule) -> Regression:
    """Seeded initial weights (as the notebook's nn-loop cell draws them), or a checkpoint's when resuming.

    The optimizer is built once here, on the model's parameters, so that a value it refuses (a negative
    momentum, say) is reported before the run starts writing.
    """
    L.seed_everything(cfg.seed, verbose=False)
    optimizer = build("optimizer", cfg.optimizer)
    model = build(
        "model", cfg.model, in_features=datamodule.n_features, out_features=datamodule.n_targets, optimizer=optimizer
    )
    try:
        model.configure_optimizers()
    except (ValueError, TypeError) as error:
        raise InvalidInput(f"optimizer: {cfg.optimizer._target_} refused its arguments: {error}") from None
    if cfg.get("resume"):
        # load_model refuses an unsafe, damaged or mismatched file with one line; fit() then restores the
        # optimizer and the loop counters from the same file.
        model.load_state_dict(load_model(Path(cfg.resume) / CHECKPOINT).state_dict())
    return model


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


def _quiet_lightning() -> None:
    """Lightning sets its loggers to INFO when imported; its "GPU available: False" and tips are noise here."""
    for name in ("lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)


@contextlib.contextmanager
def _expected_warnings_silenced() -> Iterator[None]:
    with warnings.catch_warnings():
        # Data lives in memory: worker processes would only add start-up time.
        warnings.filterwarnings("ignore", ".*does not have many workers.*")
        # The loss curve is logged by LossMonitor, not through self.log's log_every_n_steps.
        warnings.filterwarnings("ignore", ".*smaller than the logging interval.*")
        # Resuming mid-epoch is exact: the DataModule skips the batches the epoch already trained on.
        warnings.filterwarnings("ignore", ".*ended before the epoch ended and your dataloader is not resumable.*")
        warnings.filterwarnings("ignore", ".*isinstance\\(treespec, LeafSpec\\)` is deprecated.*")
        yield


def is_global_zero() -> bool:
    """True in the process that writes files and prints (the only one, unless under DDP)."""
    return rank_zero_only.rank == 0


def _started_record(
    cfg: DictConfig, datamodule: RegressionDataModule, model: Regression, overrides: Sequence[str]
) -> dict[str, Any]:
    """What the run is, before it trains: written as "running" so that a killed run leaves it behind."""
    return {
        "status": "running",
        "lr": cfg.optimizer.get("lr", cfg.lr),  # what the optimizer really got, even if set as optimizer.lr
        "iters": cfg.iters,
        "seed": cfg.seed,
        "data": datamodule.name,
        "model": type(model).__name__,
        "optimizer": cfg.optimizer._target_.rpartition(".")[2],
        "batch_size": datamodule.effective_batch_size(),
        "overrides": split_overrides(overrides),
        "resumed_from": str(Path(cfg.resume) / CHECKPOINT) if cfg.get("resume") else None,
        "test_inputs": datamodule.splits.test.x[:MAX_PREDICTIONS].tolist(),
        "predictions_before": _predict(model, datamodule.splits.test.x[:MAX_PREDICTIONS]),
    }


def _status(trainer: L.Trainer, iters: int, monitor: LossMonitor, interrupt: GracefulInterrupt) -> str:
    if monitor.diverged_at_step is not None:
        return "diverged"
    if interrupt.received:
        return "interrupted"
    return "stopped" if trainer.global_step < iters else "ok"


def _stopped_by(trainer: L.Trainer) -> str:
    """Who ended training before `iters`: an early-stopping callback names itself, anything else is generic."""
    for callback in trainer.callbacks:
        if getattr(callback, "stopped_epoch", 0):  # EarlyStopping sets it when it stops the run
            return type(callback).__name__
    return "a callback or a Trainer argument"


def _predict(model: Regression, x: torch.Tensor) -> list[list[float]]:
    with torch.no_grad():  # in the model's dtype: `+trainer.precision=64-true` turns it to float64
        return model(x.to(model.dtype)).tolist()


def _flat_hparams(record: dict[str, Any], cfg: DictConfig) -> dict[str, Any]:
    """Flat primitives for the HPARAMS tab: the same keys in every run, never None, no `_target_`."""
    hparams = {key: record[key] for key in ("lr", "iters", "seed", "batch_size", "data", "model", "optimizer")}
    for key in record["overrides"]:
        value = OmegaConf.select(cfg, key, default=None)
        if key not in hparams and isinstance(value, int | float | str) and not isinstance(value, bool):
            hparams[key] = value
    return hparams


def _log_hparams_with_final_metrics(logger: Logger, hparams: dict[str, Any], metrics: dict[str, float]) -> None:
    """TensorBoard's HPARAMS tab shows hyperparameters only together with metrics (Lightning #2971)."""
    if isinstance(logger, TensorBoardLogger):
        logger.log_hyperparams(hparams, metrics=metrics)
    else:
        logger.log_hyperparams(hparams)
        logger.log_metrics(metrics)
    logger.finalize("success")


def _final_metrics(record: dict[str, Any]) -> dict[str, float]:
    def number(value: float | None) -> float:
        return math.nan if value is None else float(value)

    return {f"hp/{name}": number(record[name]) for name in ("train_loss", "val_mse", "val_mae", "val_r2")}
