"""The exact answers a linear regression has, computed from the training data before training.

The best possible fit: the least-squares optimum of y = x @ W.T + b (numpy's `lstsq` on the inputs with a
column of ones, in float64) and its MSE, which no linear model can beat on that data and which every other
model can be compared with. The stability limit: full-batch gradient descent on the MSE converges only for
lr < 2 / λmax(H), with H = (2/N)·X̃ᵀX̃ the Hessian of the MSE in (W, b) (X̃: the inputs with the column of
ones; the same H for every output). Heavy-ball momentum β moves it to 2(1 + β) / λmax; SGD's weight decay
adds to every eigenvalue of H. This is exact for plain full-batch SGD on the linear model; for mini-batches,
Adam or a non-linear model it is only a landmark (README, "The best possible fit and the stability limit").

Pure functions of the tensors actually trained on (standardized when `data.standardize`: `linreg.train`
passes `RegressionDataModule.trained_units`), returning plain numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from torch import Tensor


@dataclass(frozen=True)
class Optimum:
    """The least-squares fit: `weight` (out_features x in_features), `bias` (out_features), and its MSE."""

    weight: list[list[float]]
    bias: list[float]
    mse: float


def _with_ones(x: Tensor) -> np.ndarray:
    """The inputs in float64 with a last column of ones, for the bias."""
    inputs = x.detach().cpu().double().numpy()
    return np.hstack([inputs, np.ones((len(inputs), 1))])


def optimum(x: Tensor, y: Tensor) -> Optimum:
    """The least-squares optimum of x (N, d) -> y (N, k): the minimum-norm solution when it is not unique."""
    inputs, targets = _with_ones(x), y.detach().cpu().double().numpy()
    solution, *_ = np.linalg.lstsq(inputs, targets, rcond=None)  # (d + 1, k)
    residual = inputs @ solution - targets
    return Optimum(weight=solution[:-1].T.tolist(), bias=solution[-1].tolist(), mse=float(np.mean(residual**2)))


def stability_limit(x: Tensor, momentum: float = 0.0, weight_decay: float = 0.0) -> float:
    """The largest lr at which full-batch (heavy-ball) SGD on the MSE of x (N, d) still converges:
    2(1 + β) / (λmax + weight decay). With the column of ones, λmax >= 2: the limit is always finite."""
    inputs = _with_ones(x)
    hessian = (2 / len(inputs)) * inputs.T @ inputs
    largest = float(np.linalg.eigvalsh(hessian)[-1])
    return 2 * (1 + momentum) / (largest + weight_decay)


def parameter_distance(weight: list[list[float]], bias: list[float], best: Optimum) -> float:
    """The Euclidean distance of a linear model's (W, b) from the optimum's, over all its numbers."""
    learned = np.concatenate([np.ravel(weight), np.ravel(bias)])
    target = np.concatenate([np.ravel(best.weight), np.ravel(best.bias)])
    return float(np.linalg.norm(learned - target))


def limit_line(lr: float, limit: float, standardized: bool = False) -> str:
    """`lr 1.0 is above this data's stability limit 0.1198`: the warning's words and a diverged run's hint;
    the limit of the standardized data when that is what trains (`data.standardize`)."""
    data = "the standardized data's" if standardized else "this data's"
    return f"lr {lr} is above {data} stability limit {limit:.4g} (full-batch gradient descent)"
