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
import os
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import lightning as L
import torch
from lightning.pytorch.callbacks import Timer
from lightning.pytorch.loggers import Logger, TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from linreg import least_squares
from linreg.checkpoint import model_from_checkpoint, read_checkpoint
from linreg.data import RegressionDataModule
from linreg.errors import InvalidInput
from linreg.interrupt import GracefulInterrupt
from linreg.least_squares import limit_line
from linreg.loss_monitor import LossMonitor
from linreg.models import LinearRegression, Regression
from linreg.results import CHECKPOINT, save_config, split_overrides, write_failure, write_results
from linreg.sources import Split
from linreg.standardization import Standardization, condition_number
from linreg.targets import build

MAX_PREDICTIONS = 10  # test inputs whose predictions results.json lists


def train(cfg: DictConfig, run_dir: Path, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Fit what the config describes, write `results.json` into `run_dir` and return its content.

    `overrides` are the command line's `key=value` strings: each becomes a column of the HPARAMS tab and
    of a sweep's summary. The status is "ok" (it reached `iters`), "stopped" (a callback or a Trainer argument
    ended training before, `stopped_by` says which), "diverged" (the loss became NaN or infinite) or
    "interrupted" (SIGINT or SIGTERM; `resume=<run folder>` continues it). A write that fails (no space left)
    leaves "failed" with the error, and raises. `cfg` is one that `linreg.config.run_config` returned.
    """
    run_dir = Path(run_dir)
    _quiet_lightning()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    datamodule: RegressionDataModule = build("data", cfg.data)
    model = _build_model(cfg, datamodule)
    datamodule.standardization = model.standardization  # a resumed run: its checkpoint's statistics
    callbacks = [build(f"callbacks.{name}", node) for name, node in cfg.callbacks.items()]
    monitor, interrupt = _one_of(callbacks, LossMonitor), _one_of(callbacks, GracefulInterrupt)
    loggers = [build(f"logger.{name}", node, save_dir=str(run_dir)) for name, node in cfg.logger.items()]
    # val_fraction=0 / test_fraction=0: Lightning is never asked to validate or test an empty split
    has_val, has_test = datamodule.has_rows("val"), datamodule.has_rows("test")
    no_validation = {} if has_val else {"limit_val_batches": 0}
    trainer: L.Trainer = build(
        "trainer", cfg.trainer, max_steps=cfg.iters, max_epochs=-1, default_root_dir=str(run_dir),
        logger=loggers or False, callbacks=callbacks, **no_validation,
    )  # fmt: skip
    datamodule.require_even_shards(trainer.world_size)
    record = _started_record(cfg, datamodule, model, overrides, trainer.world_size)
    trained = datamodule.trained_units(datamodule.splits.train)  # what gradient descent sees: standardized if so
    identity = datamodule.standardization.is_identity
    best = datamodule.optimum if identity else least_squares.optimum(trained.x, trained.y)  # the trained units'
    record.update(**_landmarks(cfg, trained, best, datamodule.splits.train, datamodule.standardization))
    if is_global_zero() and record["above_stability_limit"] and isinstance(model, LinearRegression):
        limit = limit_line(record["lr"], record["stability_limit"], datamodule.standardize)
        print(f"warning: {limit}; expect it to diverge", file=sys.stderr)

    with interrupt, _failures_recorded(run_dir, record):
        if is_global_zero():
            write_results(run_dir, record)  # "running": what a killed run leaves behind
            if cfg.get("resume"):
                save_config(run_dir, cfg)  # the folder says what it trains with, not Hydra's defaults
        started = time.perf_counter()
        resume_from = Path(cfg.resume) / CHECKPOINT if cfg.get("resume") else None
        with interrupt.lightnings_sigterm_noted():
            if resume_from is None and has_val:  # step 0 of the validation curve: where every run starts from
                trainer.validate(model, datamodule=datamodule, verbose=False)
            fit_started = time.perf_counter()
            trainer.fit(model, datamodule=datamodule, ckpt_path=resume_from, weights_only=True)
        fit_s = time.perf_counter() - fit_started
        with interrupt.lightnings_sigterm_noted():  # a diverged run too: its scores are then NaN or infinite
            if has_val:
                trainer.validate(model, datamodule=datamodule, verbose=False)
            if has_test:
                trainer.test(model, datamodule=datamodule, verbose=False)  # the test split, once, at the end
        trainer.save_checkpoint(run_dir / CHECKPOINT, weights_only=False)  # with optimizer and loop state

        record.update(
            **_ending(trainer, cfg.iters, monitor, interrupt),
            steps=trainer.global_step,
            train_loss=monitor.last_loss,  # the objective as trained: in standardized units if standardized
            # in the target's units; absent for a split with no rows (val_fraction=0, test_fraction=0)
            **_scores(model.scores, [stage for stage, rows in (("val", has_val), ("test", has_test)) if rows]),
            val_curve=model.val_curve,
            **model.learned_parameters(),  # in the data's units
            **_distance_from(best, record["optimum_mse"], model, datamodule.splits.train),
            predictions=_predict(model, datamodule.splits.test.x[:MAX_PREDICTIONS]),
            checkpoint=str(CHECKPOINT),
            fit_s=round(fit_s, 4),  # training alone: the figure for throughput
            wall_s=round(time.perf_counter() - started, 4),  # training, validations, the test and the checkpoint
        )
        for logger in trainer.loggers:
            _log_hparams_with_final_metrics(logger, _flat_hparams(record, cfg), record)
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
    model.standardization = datamodule.standardization  # the training split's statistics, saved with the model
    try:
        model.configure_optimizers()
    except (ValueError, TypeError) as error:
        raise InvalidInput(f"optimizer: {cfg.optimizer._target_} refused its arguments: {error}") from None
    if cfg.get("resume"):
        # An unsafe, damaged or mismatched file is refused with one line; fit() then restores the optimizer
        # and the loop counters from the same file.
        path = Path(cfg.resume) / CHECKPOINT
        checkpoint = read_checkpoint(path)
        reached = int(checkpoint.get("global_step", 0))
        if reached >= cfg.iters:
            raise InvalidInput(
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


def is_global_zero() -> bool:
    """True in the process that writes files and prints (the only one, unless under DDP)."""
    return rank_zero_only.rank == 0


def _started_record(
    cfg: DictConfig, datamodule: RegressionDataModule, model: Regression, overrides: Sequence[str], processes: int
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
        "batch_size": datamodule.effective_batch_size(processes),  # samples per optimizer step, all processes
        "standardize": datamodule.standardize,
        # of the design trained on ([x, 1], standardized if so): large means slow, or an lr that diverges
        "condition_number": condition_number(datamodule.splits.train.x, datamodule.standardization),
        "processes": processes,
        "overrides": split_overrides(overrides),
        "resumed_from": str(Path(cfg.resume) / CHECKPOINT) if cfg.get("resume") else None,
        "test_inputs": datamodule.splits.test.x[:MAX_PREDICTIONS].tolist(),
        "test_targets": datamodule.splits.test.y[:MAX_PREDICTIONS].tolist(),  # the true values of `predictions`
        "predictions_before": _predict(model, datamodule.splits.test.x[:MAX_PREDICTIONS]),
    }


def _landmarks(
    cfg: DictConfig, trained: Split, best: least_squares.Optimum, train: Split, standardization: Standardization
) -> dict[str, Any]:
    """The best possible linear fit and the full-batch stability limit at the optimizer's momentum and weight
    decay (the limit is SGD's: for Adam it is only a landmark), both of the data as trained: standardized
    when it is, since that is what the lr meets. The optimum's weight, bias and MSE are reported in the data's
    units, like the run's own (the standardized weight and bias beside them when standardized)."""
    options = cfg.optimizer
    limit = least_squares.stability_limit(
        trained.x, momentum=float(options.get("momentum", 0.0)), weight_decay=float(options.get("weight_decay", 0.0))
    )
    weight, bias = standardization.linear_in_original_units(
        torch.tensor(best.weight, dtype=torch.float64), torch.tensor(best.bias, dtype=torch.float64)
    )
    landmarks = {
        "optimum_weight": weight.tolist(),
        "optimum_bias": bias.tolist(),
        "optimum_mse": least_squares.mse(train.x, train.y, weight, bias),
        "stability_limit": limit,  # of the standardized data when standardized
        "above_stability_limit": options.get("lr", cfg.lr) > limit,
    }
    if not standardization.is_identity:
        landmarks.update(standardized_optimum_weight=best.weight, standardized_optimum_bias=best.bias)
    return landmarks


def _distance_from(
    best: least_squares.Optimum, optimum_mse: float, model: Regression, train: Split
) -> dict[str, float | None]:
    """How far the run ended from the best possible fit: its MSE on the whole training set (not the last
    batch's loss) and the excess over the optimum's, in the data's units, and for a linear model the distance
    of its (W, b) from the optimum's in the units it trained in (where gradient descent moves them)."""
    with torch.no_grad():
        predictions = model(train.x.to(model.dtype)).double()
    train_mse = float(torch.mean((predictions - train.y.double()) ** 2))
    learned = model.learned_parameters()
    distance = None
    if isinstance(model, LinearRegression):
        weight = learned.get("standardized_weight", learned["weight"])
        distance = least_squares.parameter_distance(weight, learned.get("standardized_bias", learned["bias"]), best)
    return {"train_mse": train_mse, "excess_mse": train_mse - optimum_mse, "parameter_distance": distance}


def _ending(trainer: L.Trainer, iters: int, monitor: LossMonitor, interrupt: GracefulInterrupt) -> dict[str, Any]:
    """How training ended: "ok" only when it reached `iters`; otherwise what stopped it, and why."""
    ending: dict[str, Any] = {"interrupted_by": None, "stopped_by": None, "stop_reason": None}
    if monitor.diverged_at_step is not None:
        ending.update(status="diverged", stop_reason=f"the loss became {monitor.last_loss} at step "
                      f"{monitor.diverged_at_step}")  # fmt: skip
    elif trainer.global_step >= iters:  # a signal during the wrap-up does not undo a finished run
        ending.update(status="ok")
    elif interrupt.received:
        ending.update(status="interrupted", interrupted_by=interrupt.received.name)
    else:
        ending.update(status="stopped", **_stopped_by(trainer))
    return {**ending, "diverged_at_step": monitor.diverged_at_step}


def _stopped_by(trainer: L.Trainer) -> dict[str, str]:
    """Who ended training before `iters`: an early-stopping callback or the Trainer's time limit say why."""
    for callback in trainer.callbacks:
        message = getattr(callback, "stopping_reason_message", None)  # EarlyStopping's own account
        if message:
            return {"stopped_by": type(callback).__name__, "stop_reason": message.strip()}
        if isinstance(callback, Timer) and (callback.time_remaining() or 0) <= 0:
            return {"stopped_by": "trainer.max_time", "stop_reason": "the Trainer's time limit ran out"}
    return {"stopped_by": "a callback or a Trainer argument", "stop_reason": "trainer.should_stop was set"}


@contextlib.contextmanager
def _failures_recorded(run_dir: Path, record: dict[str, Any]) -> Iterator[None]:
    """A run that fails once its record is started leaves results.json "failed" with the error, never "running":
    a write that fails (no space left, a read-only folder), or anything else that goes wrong.

    Loggers write from threads of their own (TensorBoard's event writer): their failures are caught here too,
    instead of being printed as a thread's traceback while the run reports success.
    """
    thread_faults: list[OSError] = []
    previous_hook = threading.excepthook

    def note_thread_fault(args: threading.ExceptHookArgs) -> None:
        if isinstance(args.exc_value, OSError):
            thread_faults.append(args.exc_value)
        else:
            previous_hook(args)

    threading.excepthook = note_thread_fault
    try:
        yield
        if thread_faults:
            raise thread_faults[0]
    except Exception as error:  # a failed write, a callback or a Trainer argument that fails: never "running"
        fault = _os_error_behind(error)
        reason = (str(error).strip().splitlines() or [""])[0]
        if is_global_zero():
            failure = (
                f"{fault.filename or run_dir}: {fault.strerror or fault}"
                if fault
                else f"{type(error).__name__}: {reason}"
            )
            write_failure(run_dir, record, failure)
        if fault is not None:
            raise fault from None
        if _raised_by_lightning(error):  # Lightning refusing a setting it only checks while running
            raise InvalidInput(f"trainer: Lightning stopped the run: {reason}") from None
        raise
    finally:
        threading.excepthook = previous_hook


def _os_error_behind(error: BaseException) -> OSError | None:
    """The failed write behind an error, if any: Lightning's loggers wrap one in a ValueError."""
    while error is not None and not isinstance(error, OSError):
        error = error.__cause__ or error.__context__
    return error


def _raised_by_lightning(error: BaseException) -> bool:
    """True when the error comes from Lightning's own code (its checks of callbacks and Trainer arguments)."""
    frames = traceback.extract_tb(error.__traceback__)
    return bool(frames) and f"{os.sep}lightning{os.sep}" in frames[-1].filename


def _predict(model: Regression, x: torch.Tensor) -> list[list[float]]:
    with torch.no_grad():  # in the model's dtype: `+trainer.precision=64-true` turns it to float64
        return model(x.to(model.dtype)).tolist()


def _flat_hparams(record: dict[str, Any], cfg: DictConfig) -> dict[str, Any]:
    """Flat primitives for the HPARAMS tab: the same keys in every run, never None, no `_target_`."""
    keys = ("lr", "iters", "seed", "batch_size", "data", "model", "optimizer", "status")
    hparams = {key: record[key] for key in keys}
    for key in record["overrides"]:
        value = OmegaConf.select(cfg, key, default=None)
        if key not in hparams and isinstance(value, int | float | str) and not isinstance(value, bool):
            hparams[key] = value
    return hparams


def _scores(scores: dict[str, dict[str, float]], stages: Sequence[str]) -> dict[str, float | None]:
    """The final scores of `stages` (those with rows) as results.json keys (`val_mse`, `test_r2`, ...): None
    where a score does not exist (R2 of fewer than two samples, any score of a diverged run)."""
    return {
        f"{stage}_{metric}": scores.get(stage, {}).get(f"{stage}/{metric}")
        for stage in stages
        for metric in ("mse", "mae", "r2")
    }


# The HPARAMS tab's metrics: the last point of each of these curves (TensorBoard reads them from the run).
HPARAMS_METRICS = ("loss/train", "loss/val", "val/mae", "val/r2", "test/mse", "test/mae", "test/r2")


def _log_hparams_with_final_metrics(logger: Logger, hparams: dict[str, Any], record: dict[str, Any]) -> None:
    """TensorBoard's HPARAMS tab shows hyperparameters only together with metrics (Lightning #2971).

    For TensorBoard the metrics name the curves already logged: Lightning's `log_hyperparams(metrics=...)`
    would also write each as a one-point chart at step 0, which sorts before the curves. Other loggers get
    the final numbers as metrics.
    """
    if isinstance(logger, TensorBoardLogger):
        logger.log_hyperparams(hparams)  # kept for hparams.yaml; without metrics it writes no event
        if is_global_zero():
            from torch.utils.tensorboard import SummaryWriter
            from torch.utils.tensorboard.summary import hparams as hparams_summaries

            # A writer of its own in the run's folder, as torch's add_hparams does (which would also add each
            # metric as a one-point chart): Lightning has closed the logger's writer after each stage.
            with SummaryWriter(log_dir=logger.log_dir) as writer:
                for summary in hparams_summaries(hparams, dict.fromkeys(HPARAMS_METRICS, 0.0)):
                    writer.file_writer.add_summary(summary)
    else:
        logger.log_hyperparams(hparams)
        logger.log_metrics(_final_metrics(record))
    logger.finalize("success")


def _final_metrics(record: dict[str, Any]) -> dict[str, float]:
    def number(value: float | None) -> float:
        return math.nan if value is None else float(value)

    names = ("train_loss", "val_mse", "val_mae", "val_r2", "test_mse", "test_mae", "test_r2")
    return {f"final/{name}": number(record[name]) for name in names if name in record}  # absent: no such split
