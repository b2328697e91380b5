"""The exact answers a linear regression has, computed from the training data before training.

The best possible fit: the least-squares optimum of y = x @ W.T + b and its MSE, which no linear model can
beat on that data and which every other model can be compared with: in float64, from a QR factorization of
the inputs with a column of ones beside the targets, block by block, so that 2,000,000 x 32 numbers need one
block's float64 copy, not one of the whole set (numpy's `lstsq` on that copy took 1.25 GiB and twice the
time). The stability limit: full-batch gradient descent on the MSE converges only for
lr < 2 / λmax(H), with H = (2/N)·X̃ᵀX̃ the Hessian of the MSE in (W, b) (X̃: the inputs with the column of
ones; the same H for every output). Heavy-ball momentum β moves it to 2(1 + β) / λmax; SGD's weight decay
adds to every eigenvalue of H. This is exact for plain full-batch SGD on the linear model; for mini-batches,
Adam or a non-linear model it is only a landmark (docs/hard-cases.md).

Pure functions of the tensors actually trained on (standardized or whitened when `data.standardize`:
`linreg.measurements` passes `RegressionDataModule.trained_units`), returning plain numbers. `intercept=False`
is a model without bias (`model.bias=false`): no column of ones, the bias 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from torch import Tensor


@dataclass(frozen=True)
class Optimum:
    """The least-squares fit: `weight` (out_features x in_features), `bias` (out_features; 0 without an
    intercept), and its MSE."""

    weight: list[list[float]]
    bias: list[float]
    mse: float


BLOCK = 65536  # rows per block of the QR factorization: a few MiB in float64


def _r_factor(x: Tensor, y: Tensor, intercept: bool = True) -> np.ndarray:
    """R of the QR factorization of [x, 1, y] ([x, y] without intercept; float64, square, upper triangular),
    one block at a time.

    [x, 1] = Q·R11 and y = Q·R12 + (what no fit of x reaches, of squared norm |R22|²): R holds everything a
    least-squares fit needs, in (d + 1 + k)² numbers, whatever the number of rows.
    """
    ones = int(intercept)
    columns = x.shape[1] + ones + y.shape[1]
    r = np.zeros((0, columns))
    for x_block, y_block in zip(x.split(BLOCK), y.split(BLOCK), strict=True):
        inputs, targets = x_block.detach().cpu().double().numpy(), y_block.detach().cpu().double().numpy()
        block = np.hstack([inputs, np.ones((len(inputs), ones)), targets])
        r = np.linalg.qr(np.vstack([r, block]), mode="r")
    return np.vstack([r, np.zeros((columns - len(r), columns))])  # fewer rows than columns: zero rows


def triangular_factor(x: Tensor) -> np.ndarray:
    """R (d x d, upper triangular) of the thin QR factorization x = QR of x (N, d) as it is, no column added:
    what `linreg.standardization` whitens with."""
    return _r_factor(x, x[:, :0], intercept=False)


def optimum(x: Tensor, y: Tensor, intercept: bool = True) -> Optimum:
    """The least-squares optimum of x (N, d) -> y (N, k): the minimum-norm solution when it is not unique.
    Without `intercept` the fit goes through the origin and its bias is 0."""
    r, inputs = _r_factor(x, y, intercept), x.shape[1] + int(intercept)
    r11, r12, r22 = r[:inputs, :inputs], r[:inputs, inputs:], r[inputs:, inputs:]
    solution, *_ = np.linalg.lstsq(r11, r12, rcond=None)  # (d + 1, k); the same solutions as [x, 1] -> y
    squared_error = np.sum((r11 @ solution - r12) ** 2) + np.sum(r22**2)
    weight, bias = (solution[:-1], solution[-1]) if intercept else (solution, np.zeros(y.shape[1]))
    return Optimum(weight=weight.T.tolist(), bias=bias.tolist(), mse=float(squared_error / (len(x) * y.shape[1])))


def stability_limit(x: Tensor, momentum: float = 0.0, weight_decay: float = 0.0, intercept: bool = True) -> float:
    """The largest lr at which full-batch (heavy-ball) SGD on the MSE of x (N, d) still converges:
    2(1 + β) / (λmax + weight decay). With the column of ones, λmax >= 2: the limit is always finite
    (without it, infinite only for all-zero inputs, where no lr moves anything).

    The largest eigenvalue of H = (2/N)·[x, 1]ᵀ[x, 1] is well determined however ill-conditioned the data
    (only the small ones are lost to rounding in the Gram sum).
    """
    largest = float(np.linalg.eigvalsh((2 / len(x)) * _gram(x, intercept))[-1])
    return 2 * (1 + momentum) / (largest + weight_decay) if largest + weight_decay > 0 else float("inf")


def condition_number(x: Tensor, intercept: bool = True) -> float:
    """The condition number of the design [x, 1] ([x] without intercept; x as trained: standardized or whitened
    when it is), in float64: the ratio of its largest to its smallest singular value, how unevenly gradient
    descent sees the directions of the problem (the MSE's Hessian has its square). About 1 when whitened.

    The Gram matrix's eigenvalues give it to about 1e-4 relative while it is below 1e6; above that they lose
    the small singular values to rounding, so the R of the blockwise QR gives the exact ones (an SVD's
    accuracy, 1e9 and more included). Infinite when a column is constant besides the bias's, or columns are
    linearly dependent, or there are fewer rows than columns.
    """
    eigenvalues = np.linalg.eigvalsh(_gram(x, intercept))
    if eigenvalues[0] > eigenvalues[-1] * 1e-12:
        return float(np.sqrt(eigenvalues[-1] / eigenvalues[0]))
    # [x, 1] = QR: the same singular values
    singular = np.linalg.svd(_r_factor(x, x[:, :0], intercept), compute_uv=False)
    return float(singular[0] / singular[-1]) if singular[-1] > 0 else float("inf")


def _gram(x: Tensor, intercept: bool = True) -> np.ndarray:
    """[x, 1]ᵀ[x, 1] ([x]ᵀ[x] without intercept) in float64, summed block by block (no float64 copy of x)."""
    columns = x.shape[1] + int(intercept)
    gram = np.zeros((columns, columns))
    for x_block in x.split(BLOCK):
        inputs = x_block.detach().cpu().double().numpy()
        block = np.hstack([inputs, np.ones((len(inputs), int(intercept)))])
        gram += block.T @ block
    return gram


def mse(x: Tensor, y: Tensor, weight: Tensor, bias: Tensor) -> float:
    """The MSE of y ≈ x @ weight.T + bias in float64, block by block (no float64 copy of the whole x)."""
    squared_error = 0.0
    for x_block, y_block in zip(x.split(BLOCK), y.split(BLOCK), strict=True):
        residual = x_block.double() @ weight.T + bias - y_block.double()
        squared_error += float((residual**2).sum())
    return squared_error / y.numel()


def parameter_distance(weight: list[list[float]], bias: list[float] | None, best: Optimum) -> float:
    """The Euclidean distance of a linear model's (W, b) from the optimum's, over all its numbers (a model
    without bias: its W from the optimum's, whose bias is 0)."""
    learned = np.concatenate([np.ravel(weight), np.ravel(best.bias if bias is None else bias)])
    target = np.concatenate([np.ravel(best.weight), np.ravel(best.bias)])
    return float(np.linalg.norm(learned - target))
