"""The seed notebook's cells as functions: autograd lessons, then three hand-written trainings of f(x) = 2x.

Each cell returns the lines it prints, so tests can hold them to what the notebook printed. Where the
notebook has a quirk, the cell keeps it (it produced the printed numbers) and says so:
- `numpy`: its gradient `np.dot(2*x, y_pred-y).mean()` is a sum over the samples (`.mean()` of a scalar does
  nothing), 4x the true MSE gradient on four points; `true_gradient=True` divides by N.
- `autograd-loop`: `learning_rate = 0.0.1` is a syntax error; the printed numbers are those of lr = 0.1.
- `nn-loop`: `loss(Y, y_pred)` swaps the arguments (harmless: MSE is symmetric); its initial weights were
  random, so the notebook's exact numbers cannot be reproduced; a seed makes ours repeatable.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from linreg.sources import SEED_TEST_X, SEED_X, SEED_Y


@dataclass
class CellOutput:
    """What a cell printed, and the values the tests check."""

    lines: list[str]
    values: dict[str, Any] = field(default_factory=dict)


def autograd(seed: int | None = None) -> CellOutput:
    """y = x + 2, z = 2y, z.mean(): each result remembers the operation that made it (grad_fn), and
    backward() fills x.grad with dz/dx = 2/3 for every element, whatever x is."""
    if seed is not None:
        torch.manual_seed(seed)
    x = torch.randn(3, requires_grad=True)
    y = x + 2
    z = y * 2
    mean = z.mean()
    mean.backward()
    lines = [str(x), str(y), str(z), str(mean), str(x.grad)]
    grad_fns = [type(t.grad_fn).__name__ for t in (y, z, mean)]
    return CellOutput(lines, {"x": x.detach(), "grad": x.grad, "grad_fns": grad_fns})


def no_grad(seed: int | None = None) -> CellOutput:
    """Three ways to compute without recording a graph: requires_grad_(False), detach(), torch.no_grad()."""
    if seed is not None:
        torch.manual_seed(seed)
    x = torch.randn(3, requires_grad=True)
    lines = [str(x)]
    x.requires_grad_(False)  # in place
    detached = x.detach()
    lines.append(str(detached))
    with torch.no_grad():
        shifted = x + 2
    lines.append(str(shifted))
    return CellOutput(lines, {"tensors": [x, detached, shifted]})


def accumulate(epochs: int = 3) -> CellOutput:
    """backward() adds into .grad: zeroed each epoch it stays 3; left alone it grows 3, 6, 9."""
    weights = torch.ones(4, requires_grad=True)
    zeroed, accumulated, lines = [], [], []
    for _ in range(epochs):
        (weights * 3).sum().backward()
        lines.append(str(weights.grad))
        zeroed.append(weights.grad.clone())
        weights.grad.zero_()
    lines.append("without weights.grad.zero_():")
    for _ in range(epochs):
        (weights * 3).sum().backward()
        lines.append(str(weights.grad))
        accumulated.append(weights.grad.clone())
    return CellOutput(lines, {"zeroed": zeroed, "accumulated": accumulated})


def numpy_gradient(x: np.ndarray, y: np.ndarray, y_pred: np.ndarray, true_gradient: bool = False) -> Any:
    """dJ/dw of J = mean((w*x - y)^2). The notebook's formula sums over samples; `true_gradient` averages."""
    summed = np.dot(2 * x, y_pred - y).mean()  # the notebook's line: .mean() of a scalar is the scalar
    return summed / len(x) if true_gradient else summed


def numpy_loop(lr: float = 0.01, iters: int = 20, true_gradient: bool = False) -> CellOutput:
    """Gradient descent on f = w*x with a hand-derived gradient, printing every other epoch."""
    x = np.array([row[0] for row in SEED_X], dtype=np.float32)
    y = np.array([row[0] for row in SEED_Y], dtype=np.float32)
    w = 0.0
    lines = [f"Prediction before training: f(5) = {w * 5:.3f}"]
    for epoch in range(iters):
        y_pred = w * x
        loss = ((y_pred - y) ** 2).mean()
        w -= lr * numpy_gradient(x, y, y_pred, true_gradient)
        if epoch % 2 == 0:
            lines.append(f"epoch {epoch + 1}: w= {w:.3f}, loss ={loss:.8f}")
    lines.append(f"Prediction after training: f(5) = {w * 5:.3f}")
    lines.append(_closed_form_line(float(w), None))
    with np.errstate(over="ignore", invalid="ignore"):  # a diverged w overflows: said below, not warned
        lines += _diverged_lines(float((y**2).mean()), float(((w * x - y) ** 2).mean()), lr)
    return CellOutput(lines, {"w": float(w)})


def autograd_loop(lr: float = 0.1, iters: int = 100) -> CellOutput:
    """The same descent with l.backward() instead of the hand-derived gradient, printing every 10 epochs."""
    x = torch.tensor([row[0] for row in SEED_X])
    y = torch.tensor([row[0] for row in SEED_Y])
    w = torch.tensor(0.0, requires_grad=True)
    lines = [f"Prediction before training: f(5) = {w * 5:.3f}"]
    for epoch in range(iters):
        y_pred = w * x
        loss = ((y_pred - y) ** 2).mean()
        loss.backward()
        with torch.no_grad():
            w -= lr * w.grad
        w.grad.zero_()
        if epoch % 10 == 0:
            lines.append(f"epoch {epoch + 1}: w= {w:.3f}, loss ={loss:.8f}")
    lines.append(f"Prediction after training: f(5) = {w * 5:.3f}")
    lines.append(_closed_form_line(w.item(), None))
    with torch.no_grad():
        lines += _diverged_lines((y**2).mean().item(), ((w * x - y) ** 2).mean().item(), lr)
    return CellOutput(lines, {"w": w.item()})


def nn_loop(lr: float = 0.001, iters: int = 1000, seed: int = 42) -> CellOutput:
    """nn.Linear + nn.MSELoss + torch.optim.SGD: the loop Lightning runs for `LinearRegression`.

    Seeded the way `linreg.train` seeds a run, so with the same seed, lr and iters both start from the
    same weights and must end at the same ones (the parity test).
    """
    x, y, x_test = torch.tensor(SEED_X), torch.tensor(SEED_Y), torch.tensor(SEED_TEST_X[0])
    n_samples, n_features = x.shape
    torch.manual_seed(seed)
    model = nn.Linear(n_features, n_features)
    lines = [f"{n_samples} {n_features}", f"Prediction before training: f(5) = {model(x_test).item():.3f}"]
    loss_fn = nn.MSELoss()
    with torch.no_grad():
        first_loss = loss_fn(y, model(x)).item()
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    for epoch in range(iters):
        loss = loss_fn(y, model(x))  # the notebook's argument order
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if epoch % 100 == 0:
            lines.append(f"epoch {epoch + 1}: w= {model.weight[0][0].item():.3f}, loss ={loss:.8f}")
    lines.append(f"Prediction after training : f(5) = {model(x_test).item():.3f}")
    w, b = model.weight.item(), model.bias.item()
    lines.append(_closed_form_line(w, b))
    with torch.no_grad():
        lines += _diverged_lines(first_loss, loss_fn(y, model(x)).item(), lr)
    return CellOutput(lines, {"w": w, "b": b, "f5": model(x_test).item(), "state": model.state_dict()})


def _diverged_lines(first_loss: float, last_loss: float, lr: float) -> list[str]:
    """A cell whose loss grew instead of shrinking says so, as train.py does for a run: w = -1e7 is no answer."""
    if math.isfinite(last_loss) and last_loss <= first_loss:
        return []
    return [f"diverged: the loss grew from {first_loss:.4g} to {last_loss:.4g}; try a smaller lr than {lr:g}"]


def closed_form(with_bias: bool) -> tuple[float, float]:
    """The least-squares optimum of the seed data: w* (and b*, else 0) from numpy.linalg.lstsq."""
    x = np.array(SEED_X, dtype=np.float64)
    y = np.array(SEED_Y, dtype=np.float64)[:, 0]
    design = np.hstack([x, np.ones_like(x)]) if with_bias else x
    solution = np.linalg.lstsq(design, y, rcond=None)[0]
    return float(solution[0]), float(solution[1]) if with_bias else 0.0


def _closed_form_line(w: float, b: float | None) -> str:
    w_star, b_star = (round(v, 12) + 0.0 for v in closed_form(with_bias=b is not None))  # no "-0.000"
    if b is None:
        return f"closed form (least squares): w* = {w_star:.3f}; |w - w*| = {abs(w - w_star):.2e}"
    return (
        f"closed form (least squares): w* = {w_star:.3f}, b* = {b_star:.3f}; "
        f"|w - w*| = {abs(w - w_star):.2e}, |b - b*| = {abs(b - b_star):.2e}"
    )


CELLS: dict[str, Callable[..., CellOutput]] = {
    "autograd": autograd,
    "no-grad": no_grad,
    "accumulate": accumulate,
    "numpy": numpy_loop,
    "autograd-loop": autograd_loop,
    "nn-loop": nn_loop,
}
