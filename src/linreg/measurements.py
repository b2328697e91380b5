"""What a run's record says about its data and model, measured from the live objects: what the run is before
it trains, its data's landmarks (the least-squares optimum and the stability limit), how far it ended from
them, its final scores and its predictions. `linreg.record` says what each key means.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

from linreg import least_squares
from linreg.data import RegressionDataModule
from linreg.models import LinearRegression, Regression
from linreg.record import CHECKPOINT, MAX_PREDICTIONS, SCORES, Record, Status, provenance, split_overrides
from linreg.sources import Split


def started(
    cfg: DictConfig, datamodule: RegressionDataModule, model: Regression, overrides: Sequence[str], processes: int
) -> tuple[Record, least_squares.Optimum]:
    """What the run is before it trains, with its data's landmarks: written as running, so that a killed run
    leaves it behind. Returns the optimum in the units trained too, which the run's distance is measured
    against."""
    best, found = _landmarks(cfg, datamodule)
    record: Record = {
        "status": Status.RUNNING,
        "lr": cfg.optimizer.get("lr", cfg.lr),  # what the optimizer really got, even if set as optimizer.lr
        "iters": cfg.iters,
        "seed": cfg.seed,
        "data": datamodule.name,
        "model": type(model).__name__,
        "optimizer": cfg.optimizer._target_.rpartition(".")[2],
        "batch_size": datamodule.effective_batch_size(processes),  # samples per optimizer step, all processes
        "standardize": datamodule.standardize,
        "processes": processes,
        "overrides": split_overrides(overrides),
        "resumed_from": str(Path(cfg.resume) / CHECKPOINT) if cfg.get("resume") else None,
        "provenance": provenance(),
        "test_inputs": datamodule.splits.test.x[:MAX_PREDICTIONS].tolist(),
        "test_targets": datamodule.splits.test.y[:MAX_PREDICTIONS].tolist(),  # the true values of `predictions`
        "predictions_before": predictions(model, datamodule),
        **found,
    }
    return record, best


def _landmarks(cfg: DictConfig, datamodule: RegressionDataModule) -> tuple[least_squares.Optimum, dict[str, Any]]:
    """The best possible linear fit and the full-batch stability limit at the optimizer's momentum and weight
    decay (the limit is SGD's: for Adam it is only a landmark), both of the data as trained: standardized (or
    whitened) when it is, since that is what the lr meets. The optimum's weight, bias and MSE are reported in
    the data's units, like the run's own (the ones in the units trained beside them when standardized). Without
    an intercept (`model.bias=false`) the optimum goes through the origin and has no bias to report.

    When whitened, the reported optimum is solved in standardized units (a QR of that design) rather than mapped
    back through R⁻¹ from the whitened one: on Filip (condition number 3.8e9) the round trip costs about a digit.
    """
    train, standardization, intercept = datamodule.splits.train, datamodule.standardization, datamodule.intercept
    trained = datamodule.trained_units(train)  # what gradient descent sees: standardized if so
    best = (
        datamodule.optimum
        if standardization.is_identity
        else least_squares.optimum(trained.x, trained.y, intercept=intercept)
    )
    options = cfg.optimizer
    limit = least_squares.stability_limit(
        trained.x,
        momentum=float(options.get("momentum", 0.0)),
        weight_decay=float(options.get("weight_decay", 0.0)),
        intercept=intercept,
    )
    reported = best
    if standardization.whitened:
        standardized = standardization.inputs(train.x.double(), whiten=False), trained.y
        reported = least_squares.optimum(*standardized, intercept=intercept)
    weight, bias = standardization.linear_in_original_units(
        torch.tensor(reported.weight, dtype=torch.float64),
        torch.tensor(reported.bias, dtype=torch.float64) if intercept else None,
        whitened=False,
    )
    through_origin = torch.zeros(weight.shape[0], dtype=torch.float64)
    found = {
        # of the design trained on ([x, 1], standardized or whitened if so): large means slow, or an lr that diverges
        "condition_number": least_squares.condition_number(trained.x, intercept=intercept),
        "optimum_weight": weight.tolist(),
        **({"optimum_bias": bias.tolist()} if bias is not None else {}),
        "optimum_mse": least_squares.mse(train.x, train.y, weight, through_origin if bias is None else bias),
        "stability_limit": limit,  # of the standardized data when standardized
        "above_stability_limit": options.get("lr", cfg.lr) > limit,
    }
    if not standardization.is_identity:
        found["standardized_optimum_weight"] = best.weight
        if intercept:
            found["standardized_optimum_bias"] = best.bias
    return best, found


def distance_from(
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
        bias = learned.get("standardized_bias", learned.get("bias"))  # None: a model without bias
        distance = least_squares.parameter_distance(weight, bias, best)
    return {"train_mse": train_mse, "excess_mse": train_mse - optimum_mse, "parameter_distance": distance}


def scores(model: Regression, stages: Sequence[str]) -> dict[str, float | None]:
    """The final scores of `stages` (those with rows) as results.json keys (`val_mse`, `test_r2`, ...): None
    where a score does not exist (R2 of fewer than two samples, any score of a diverged run)."""
    return {
        f"{stage}_{score}": model.scores.get(stage, {}).get(f"{stage}/{score}") for stage in stages for score in SCORES
    }


def predictions(model: Regression, datamodule: RegressionDataModule) -> list[list[float]]:
    """The model's predictions for the record's test inputs (the first MAX_PREDICTIONS of the test split)."""
    return predict(model, datamodule.splits.test.x[:MAX_PREDICTIONS])


def predict(model: Regression, x: torch.Tensor) -> list[list[float]]:
    """The model's predictions for `x`, in the model's dtype."""
    with torch.no_grad():  # in the model's dtype: `+trainer.precision=64-true` turns it to float64
        return model(x.to(model.dtype)).tolist()
