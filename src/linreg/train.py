"""One training run: build the DataModule, the model and a Trainer from the config, fit, and record.

Everything a run writes goes into its own folder (Hydra's run or job folder, never the working
directory): TensorBoard events, `checkpoints/last.ckpt` and `results.json`; Hydra adds the composed config
under `.hydra/`.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from lightning.pytorch.loggers import Logger, TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from linreg.config import validate
from linreg.data import RegressionDataModule
from linreg.errors import InvalidInput
from linreg.interrupt import GracefulInterrupt
from linreg.loss_monitor import LossMonitor
from linreg.model import LinearRegression, load_model
from linreg.progress import StepProgressBar
from linreg.results import CHECKPOINT, split_overrides, write_results
from linreg.sources import Splits, load_source

MAX_PREDICTIONS = 10  # test inputs whose predictions results.json lists


def train(
    cfg: DictConfig, run_dir: Path, overrides: Sequence[str] = (), loaded: tuple[str, Splits] | None = None
) -> dict[str, Any]:
    """Fit the model the config describes, write `results.json` into `run_dir` and return its content.

    `overrides` are the command line's `key=value` strings: each becomes a column of the HPARAMS tab and
    of a sweep's summary. `loaded` is the data (`linreg.sources.load_source`) if the caller has read it
    already. The status is "ok", "diverged" (the loss became NaN or infinite) or
    "interrupted" (SIGINT or SIGTERM; `resume=<run folder>` continues it).
    """
    validate(cfg)
    # Lightning sets its loggers to INFO when imported; its "GPU available: False" and tips are noise here.
    for name in ("lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)
    run_dir = Path(run_dir)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    name, splits = loaded or load_source(cfg.data)
    datamodule = RegressionDataModule(
        splits, name, batch_size=cfg.data.batch_size, shuffle=cfg.data.shuffle, shuffle_seed=cfg.data.shuffle_seed
    )
    resume_from = Path(cfg.resume) / CHECKPOINT if cfg.get("resume") else None
    model = _build_model(cfg, datamodule, resume_from)
    test_x = datamodule.splits.test.x[:MAX_PREDICTIONS]
    record: dict[str, Any] = {
        "status": "running",
        "lr": cfg.lr,
        "iters": cfg.iters,
        "seed": cfg.seed,
        "data": datamodule.name,
        "batch_size": datamodule.effective_batch_size(),
        "overrides": split_overrides(overrides),
        "resumed_from": str(resume_from) if resume_from else None,
        "test_inputs": test_x.tolist(),
        "predictions_before": _predict(model, test_x),
    }
    monitor, interrupt = LossMonitor(), GracefulInterrupt()
    trainer = _build_trainer(cfg, run_dir, callbacks=[monitor, interrupt])  # may refuse a Trainer argument
    if is_global_zero():
        write_results(run_dir, record)  # "running": what a killed run leaves behind

    started = time.perf_counter()
    with warnings.catch_warnings():
        # Data lives in memory: worker processes would only add start-up time.
        warnings.filterwarnings("ignore", ".*does not have many workers.*")
        # The loss curve is logged by LossMonitor, not through self.log's log_every_n_steps.
        warnings.filterwarnings("ignore", ".*smaller than the logging interval.*")
        # Resuming mid-epoch is exact: the DataModule skips the batches the epoch already trained on.
        warnings.filterwarnings("ignore", ".*ended before the epoch ended and your dataloader is not resumable.*")
        warnings.filterwarnings("ignore", ".*isinstance\\(treespec, LeafSpec\\)` is deprecated.*")
        trainer.fit(model, datamodule=datamodule, ckpt_path=resume_from, weights_only=True)
        fit_s = time.perf_counter() - started
        diverged = monitor.diverged_at_step is not None
        val = {} if diverged else trainer.validate(model, datamodule=datamodule, verbose=False)[0]
    trainer.save_checkpoint(run_dir / CHECKPOINT, weights_only=False)  # with optimizer and loop state, to resume
    wall_s = time.perf_counter() - started

    record.update(
        status="diverged" if diverged else "interrupted" if interrupt.received else "ok",
        interrupted_by=interrupt.received.name if interrupt.received else None,
        steps=trainer.global_step,
        diverged_at_step=monitor.diverged_at_step,
        train_loss=monitor.last_loss,
        val_mse=val.get("val/mse"),
        val_mae=val.get("val/mae"),
        val_r2=val.get("val/r2"),
        weight=model.linear.weight.detach().tolist(),
        bias=model.linear.bias.detach().tolist(),
        predictions=_predict(model, test_x),
        checkpoint=str(CHECKPOINT),
        fit_s=round(fit_s, 4),  # training alone: the figure for throughput
        wall_s=round(wall_s, 4),  # training, the final validation and the checkpoint
    )
    if trainer.logger is not None:
        _log_hparams_with_final_metrics(trainer.logger, _flat_hparams(record, cfg), _final_metrics(record))
    if trainer.is_global_zero:
        write_results(run_dir, record)
    return record


def _build_model(cfg: DictConfig, datamodule: RegressionDataModule, resume_from: Path | None) -> LinearRegression:
    """Seeded initial weights (as the notebook's nn-loop cell draws them), or a checkpoint's when resuming."""
    L.seed_everything(cfg.seed, verbose=False)
    model = LinearRegression(
        in_features=datamodule.n_features,
        out_features=datamodule.n_targets,
        lr=cfg.lr,
        momentum=cfg.model.momentum,
        weight_decay=cfg.model.weight_decay,
    )
    if resume_from is not None:
        # load_model refuses an unsafe, damaged or mismatched file with one line; fit() then restores the
        # optimizer and the loop counters from the same file.
        model.load_state_dict(load_model(resume_from).state_dict())
    return model


def _build_trainer(cfg: DictConfig, run_dir: Path, callbacks: list[L.Callback]) -> L.Trainer:
    """Lightning's Trainer from `cfg.trainer`, stepping `iters` times and logging into the run folder."""
    trainer_cfg = OmegaConf.to_container(cfg.trainer)
    if trainer_cfg.pop("enable_progress_bar", True):
        callbacks = [*callbacks, StepProgressBar()]
    logger = instantiate(cfg.logger, save_dir=str(run_dir)) if cfg.logger else False
    try:
        return instantiate(
            trainer_cfg,
            max_steps=cfg.iters,
            max_epochs=-1,
            default_root_dir=str(run_dir),
            logger=logger,
            callbacks=callbacks,
            enable_progress_bar=False,
        )
    except InstantiationException as error:  # any Trainer argument can be set: `+trainer.precision=banana`
        reason = str(error.__cause__ or error).splitlines()[0]
        raise InvalidInput(f"trainer: Lightning's Trainer refused its arguments: {reason}") from None


def is_global_zero() -> bool:
    """True in the process that writes files and prints (the only one, unless under DDP)."""
    return rank_zero_only.rank == 0


def _predict(model: LinearRegression, x: torch.Tensor) -> list[list[float]]:
    with torch.no_grad():  # in the model's dtype: `+trainer.precision=64-true` turns it to float64
        return model(x.to(model.linear.weight.dtype)).tolist()


def _flat_hparams(record: dict[str, Any], cfg: DictConfig) -> dict[str, Any]:
    """Flat primitives for the HPARAMS tab: the same keys in every run, never None, no `_target_`."""
    hparams = {
        "lr": record["lr"],
        "iters": record["iters"],
        "seed": record["seed"],
        "batch_size": record["batch_size"],
        "data": record["data"],
        "momentum": cfg.model.momentum,
        "weight_decay": cfg.model.weight_decay,
    }
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

    return {
        "hp/train_loss": number(record["train_loss"]),
        "hp/val_mse": number(record["val_mse"]),
        "hp/val_mae": number(record["val_mae"]),
        "hp/val_r2": number(record["val_r2"]),
    }
