"""TensorBoard's HPARAMS tab (and the other loggers' hyperparameters): one flat row per run, with its final
metrics, written once the run's record is complete."""

from __future__ import annotations

import math
from typing import Any

from lightning.pytorch.loggers import Logger, TensorBoardLogger
from omegaconf import DictConfig, OmegaConf

from linreg.outcome import is_global_zero
from linreg.record import METRICS, Record

# The HPARAMS tab's metrics, by tag, with the names it shows: the last point of each of these curves, all in the
# data's units, so that runs trained standardized and raw compare (`loss/train` is in the units trained).
HPARAMS_METRICS = {
    "train/mse": "train MSE (data units)", "loss/val": "val MSE (data units)", "val/mae": "val MAE (data units)",
    "val/r2": "val R2", "test/mse": "test MSE (data units)", "test/mae": "test MAE (data units)", "test/r2": "test R2",
}  # fmt: skip
TRAIN_MSE_TAG = "train/mse"  # written once, at the end: the training split's MSE in the data's units
HPARAMS_KEYS = ("lr", "iters", "seed", "batch_size", "data", "model", "optimizer", "status")


def log_hparams(loggers: list[Logger], record: Record, cfg: DictConfig) -> None:
    """Give every logger the run's hyperparameters with its final metrics, once the record is complete."""
    hparams = flat_hparams(record, cfg)
    for logger in loggers:
        _log_with_final_metrics(logger, hparams, record)


def flat_hparams(record: Record, cfg: DictConfig) -> dict[str, Any]:
    """Flat primitives for the HPARAMS tab: the same keys in every run, never None, no `_target_`."""
    hparams = {key: str(record[key]) if key == "status" else record[key] for key in HPARAMS_KEYS}
    for key in record["overrides"]:
        value = OmegaConf.select(cfg, key, default=None)
        if key not in hparams and isinstance(value, int | float | str) and not isinstance(value, bool):
            hparams[key] = value
    return hparams


def _log_with_final_metrics(logger: Logger, hparams: dict[str, Any], record: Record) -> None:
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
                if record.get("train_mse") is not None:
                    writer.add_scalar(TRAIN_MSE_TAG, record["train_mse"], global_step=record["steps"])
                experiment, *session = hparams_summaries(hparams, dict.fromkeys(HPARAMS_METRICS, 0.0))
                for summary in (_named_metrics(experiment), *session):
                    writer.file_writer.add_summary(summary)
    else:
        logger.log_hyperparams(hparams)
        logger.log_metrics(_final_metrics(record))
    logger.finalize("success")


def _named_metrics(experiment: Any) -> Any:
    """torch's experiment summary with each metric's display name (HPARAMS_METRICS): torch writes tags only."""
    from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData

    value = experiment.value[0]
    data = HParamsPluginData.FromString(value.metadata.plugin_data.content)
    for info in data.experiment.metric_infos:
        info.display_name = HPARAMS_METRICS[info.name.tag]
    value.metadata.plugin_data.content = data.SerializeToString()
    return experiment


def _final_metrics(record: Record) -> dict[str, float]:
    def number(value: float | None) -> float:
        return math.nan if value is None else float(value)

    return {f"final/{name}": number(record[name]) for name in METRICS if name in record}  # absent: no such split
