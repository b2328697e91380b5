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

Pure functions of the tensors actually trained on (standardized when `data.standardize`: `linreg.measurements`
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


BLOCK = 65536  # rows per block of the QR factorization: a few MiB in float64


def _r_factor(x: Tensor, y: Tensor) -> np.ndarray:
    """R of the QR factorization of [x, 1, y] (float64, square, upper triangular), one block at a time.

    [x, 1] = Q·R11 and y = Q·R12 + (what no fit of x reaches, of squared norm |R22|²): R holds everything a
    least-squares fit needs, in (d + 1 + k)² numbers, whatever the number of rows.
    """
    columns = x.shape[1] + 1 + y.shape[1]
    r = np.zeros((0, columns))
    for x_block, y_block in zip(x.split(BLOCK), y.split(BLOCK), strict=True):
        inputs, targets = x_block.detach().cpu().double().numpy(), y_block.detach().cpu().double().numpy()
        block = np.hstack([inputs, np.ones((len(inputs), 1)), targets])
        r = np.linalg.qr(np.vstack([r, block]), mode="r")
    return np.vstack([r, np.zeros((columns - len(r), columns))])  # fewer rows than columns: zero rows


def optimum(x: Tensor, y: Tensor) -> Optimum:
    """The least-squares optimum of x (N, d) -> y (N, k): the minimum-norm solution when it is not unique."""
    r, inputs = _r_factor(x, y), x.shape[1] + 1
    r11, r12, r22 = r[:inputs, :inputs], r[:inputs, inputs:], r[inputs:, inputs:]
    solution, *_ = np.linalg.lstsq(r11, r12, rcond=None)  # (d + 1, k); the same solutions as [x, 1] -> y
    squared_error = np.sum((r11 @ solution - r12) ** 2) + np.sum(r22**2)
    return Optimum(
        weight=solution[:-1].T.tolist(), bias=solution[-1].tolist(), mse=float(squared_error / (len(x) * y.shape[1]))
    )


def stability_limit(x: Tensor, momentum: float = 0.0, weight_decay: float = 0.0) -> float:
    """The largest lr at which full-batch (heavy-ball) SGD on the MSE of x (N, d) still converges:
    2(1 + β) / (λmax + weight decay). With the column of ones, λmax >= 2: the limit is always finite.

    The largest eigenvalue of H = (2/N)·[x, 1]ᵀ[x, 1] is well determined however ill-conditioned the data
    (only the small ones are lost to rounding in the Gram sum).
    """
    largest = float(np.linalg.eigvalsh((2 / len(x)) * _gram(x))[-1])
    return 2 * (1 + momentum) / (largest + weight_decay)


def condition_number(x: Tensor) -> float:
    """The condition number of the design [x, 1] (x as trained: standardized when it is), in float64: the ratio
    of its largest to its smallest singular value, how unevenly gradient descent sees the directions of the
    problem (the MSE's Hessian has its square).

    The Gram matrix's eigenvalues give it to about 1e-4 relative while it is below 1e6; above that they lose
    the small singular values to rounding, so the R of the blockwise QR gives the exact ones (an SVD's
    accuracy, 1e9 and more included). Infinite when a column is constant besides the bias's, or columns are
    linearly dependent, or there are fewer rows than columns.
    """
    eigenvalues = np.linalg.eigvalsh(_gram(x))
    if eigenvalues[0] > eigenvalues[-1] * 1e-12:
        return float(np.sqrt(eigenvalues[-1] / eigenvalues[0]))
    singular = np.linalg.svd(_r_factor(x, x[:, :0]), compute_uv=False)  # [x, 1] = QR: the same singular values
    return float(singular[0] / singular[-1]) if singular[-1] > 0 else float("inf")


def _gram(x: Tensor) -> np.ndarray:
    """[x, 1]ᵀ[x, 1] in float64, summed block by block (no float64 copy of the whole x)."""
    gram = np.zeros((x.shape[1] + 1, x.shape[1] + 1))
    for x_block in x.split(BLOCK):
        inputs = x_block.detach().cpu().double().numpy()
        block = np.hstack([inputs, np.ones((len(inputs), 1))])
        gram += block.T @ block
    return gram


def mse(x: Tensor, y: Tensor, weight: Tensor, bias: Tensor) -> float:
    """The MSE of y ≈ x @ weight.T + bias in float64, block by block (no float64 copy of the whole x)."""
    squared_error = 0.0
    for x_block, y_block in zip(x.split(BLOCK), y.split(BLOCK), strict=True):
        residual = x_block.double() @ weight.T + bias - y_block.double()
        squared_error += float((residual**2).sum())
    return squared_error / y.numel()


def parameter_distance(weight: list[list[float]], bias: list[float], best: Optimum) -> float:
    """The Euclidean distance of a linear model's (W, b) from the optimum's, over all its numbers."""
    learned = np.concatenate([np.ravel(weight), np.ravel(bias)])
    target = np.concatenate([np.ravel(best.weight), np.ravel(best.bias)])
    return float(np.linalg.norm(learned - target))
