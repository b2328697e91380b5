"""One training run, as orchestration: build what the config names, start the record, fit, evaluate, and
record what happened. Each step's details live in the module named beside it."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from linreg import measurements, record
from linreg.build import build_run
from linreg.data import RegressionDataModule
from linreg.hparams import log_hparams
from linreg.least_squares import Optimum
from linreg.models import LinearRegression, Regression
from linreg.outcome import ending, failures_recorded, is_global_zero
from linreg.record import CHECKPOINT, Record


def train(cfg: DictConfig, run_dir: Path, overrides: Sequence[str] = ()) -> Record:
    """Fit what the config describes, write `results.json` into `run_dir` and return its content.

    `cfg` is one that `linreg.resume.run_config` returned; `overrides` are the command line's `key=value`
    strings (the HPARAMS tab's and a sweep summary's columns). `linreg.record.Status` lists how a run can end;
    a write that fails leaves it failed with the error, and raises.
    """
    run_dir = Path(run_dir)
    run = build_run(cfg, run_dir)
    datamodule, model, trainer, interrupt = run.datamodule, run.model, run.trainer, run.interrupt
    result, best = measurements.started(cfg, datamodule, model, overrides, trainer.world_size)
    warn_above_stability_limit(result, model)
    resume_from = Path(cfg.resume) / CHECKPOINT if cfg.get("resume") else None

    with interrupt, failures_recorded(run_dir, result):
        if is_global_zero():
            record.write(run_dir, result)  # running: what a killed run leaves behind
            if resume_from:
                record.save_config(run_dir, cfg)  # the folder says what it trains with, not Hydra's defaults
        clock = time.perf_counter()
        with interrupt.lightnings_sigterm_noted():
            if resume_from is None and "val" in run.stages:  # step 0 of the validation curve
                trainer.validate(model, datamodule=datamodule, verbose=False)
            fit_started = time.perf_counter()
            trainer.fit(model, datamodule=datamodule, ckpt_path=resume_from, weights_only=True)
        fit_s = time.perf_counter() - fit_started
        with interrupt.lightnings_sigterm_noted():  # a diverged run too: its scores are then NaN or infinite
            if "val" in run.stages:
                trainer.validate(model, datamodule=datamodule, verbose=False)
            if "test" in run.stages:
                trainer.test(model, datamodule=datamodule, verbose=False)  # the test split, once, at the end
        trainer.save_checkpoint(run_dir / CHECKPOINT, weights_only=False)  # with optimizer and loop state

        finish(
            result, model, datamodule, best, run.stages,
            **ending(trainer, cfg.iters, run.monitor, interrupt),
            steps=trainer.global_step,
            train_loss=run.monitor.last_loss,  # the objective as trained: in standardized units if standardized
            fit_s=round(fit_s, 4),  # training alone: the figure for throughput
            wall_s=round(time.perf_counter() - clock, 4),  # training, validations, the test and the checkpoint
        )  # fmt: skip
        log_hparams(trainer.loggers, result, cfg)
        if is_global_zero():
            record.write(run_dir, result)
    return result


def finish(
    result: Record,
    model: Regression,
    datamodule: RegressionDataModule,
    best: Optimum,
    stages: Sequence[str],
    **ended: Any,
) -> None:
    """Complete a run's record once it trained: how it `ended` (status, steps, loss, timings), then its scores,
    validation curve, learned parameters, distance from the optimum `best` and predictions, read from `model`
    (`model.scores` and `model.val_curve` as its last validation and test left them). The batched launcher
    completes each member's record here too, from that member's own model."""
    result.update(
        **ended,
        **measurements.scores(model, stages),
        val_curve=model.val_curve,
        **model.learned_parameters(),  # in the data's units
        **measurements.distance_from(best, result["optimum_mse"], model, datamodule.splits.train),
        predictions=measurements.predictions(model, datamodule),
        checkpoint=str(CHECKPOINT),
    )


def warn_above_stability_limit(result: Record, model: object) -> None:
    """A linear model's lr above the full-batch limit is said before training: the run will likely diverge."""
    if is_global_zero() and result["above_stability_limit"] and isinstance(model, LinearRegression):
        limit = record.limit_line(result["lr"], result["stability_limit"], result["standardize"])
        print(f"warning: {limit}; expect it to diverge", file=sys.stderr)
