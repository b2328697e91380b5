"""Standardization (`data.standardize`): inputs and target centred and scaled by the training split's statistics,
and whitened on request (`data.standardize=whiten`).

Gradient descent on columns of different units crawls or diverges: the condition number of such a design is
in the billions (Longley's is about 4.9e9; standardized, about 110), and no single lr suits a column in the
thousands and one in fractions. So the DataModule fits these statistics on the training split only (never
on the validation or test rows, which would leak them into training) and serves every split standardized.

Where each number lives, and why:
- Training runs in standardized units: the loss, its gradient, the lr and the stability limit all refer to
  the standardized data. Training on de-standardized outputs instead would scale the gradient by the
  target's variance and bring the problem back.
- What a person reads is in the data's units: predictions, the validation and test metrics (MSE, MAE, R2;
  also in the HPARAMS tab), a linear model's weight and bias (results.json, the printed summary, the sweep
  table; the trained ones beside them in results.json as `standardized_weight`, `standardized_bias`).
  The training loss is the one exception: it is the optimizer's objective, in the units it trained in,
  as the loss curve and the divergence check see it.
- The statistics are buffers of the model (`Regression.standardization`), saved in its state_dict: the
  checkpoint carries them, so `predict.py` takes raw inputs and a resumed run serves its data with the
  same ones.
A column with zero variance on the training split is centred but not scaled (scale 1): it is constant,
carries no information a linear fit can use, and dividing by its zero spread would make it NaN.

Whitening (`data.standardize=whiten`): per-column scaling cannot fix columns that are nearly collinear (the
powers x, x², ..., x¹⁰ of NIST's Filip keep a condition number of 3.8e9 standardized). So the standardized
training design Z is factorized once, Z = QR (thin QR, d x d), and the network trains on Z·R⁻¹·√N = √N·Q: columns
of unit variance, orthogonal to each other and to the column of ones. The MSE's Hessian is then a multiple of
the identity (condition number 1), and plain gradient descent at lr 0.5 lands on the optimum in a few steps.
The cost: one QR factorization of an N x d matrix, once (blockwise, `linreg.least_squares`), and a d x d matrix
product per batch. The weights map back through R⁻¹ to standardized units, then to the data's as above; the
matrix √N·R⁻¹ is a buffer like the statistics, so a checkpoint predicts from raw inputs. Linearly dependent
training columns (a constant column included) have no R⁻¹: refused, with standardize=true as the way out.

A model without intercept (`model.bias=false`, NIST's NoInt1): centring would put one back (a centred fit maps
back to y = W·x + (ȳ - W·x̄)), so the data is scaled by its root mean square instead of its standard deviation,
not centred, and whitened (if asked) without centring.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from linreg import least_squares
from linreg.errors import InvalidInput


class Standardization(nn.Module):
    """x -> (x - x_mean) / x_scale and y -> (y - y_mean) / y_scale, and back for the outputs.

    Built without statistics it is the identity (means 0, scales 1, shape (1,) broadcasting over any width).
    The buffers are created float64 and cast to the data's dtype where applied, so that float32 training
    keeps exact statistics for the conversion back to the data's units. `x_whitening` is √N·R⁻¹ when
    whitened, else empty (0 x 0).
    """

    x_mean: Tensor
    x_scale: Tensor
    y_mean: Tensor
    y_scale: Tensor
    x_whitening: Tensor

    def __init__(self) -> None:
        super().__init__()
        for name, value in (("x_mean", 0.0), ("x_scale", 1.0), ("y_mean", 0.0), ("y_scale", 1.0)):
            self.register_buffer(name, torch.tensor([value], dtype=torch.float64))
        self.register_buffer("x_whitening", torch.zeros(0, 0, dtype=torch.float64))
        self.register_load_state_dict_pre_hook(_take_saved_shapes)

    @classmethod
    def of(cls, x: Tensor, y: Tensor, centre: bool = True, whiten: bool = False) -> Standardization:
        """The statistics of (x, y), the training split: mean and standard deviation (ddof 0) per column; without
        `centre`, mean 0 and the root mean square. With `whiten`, the whitening matrix of the scaled inputs."""
        standardization = cls()
        for prefix, data in (("x", x), ("y", y)):
            data = data.double()
            mean = data.mean(dim=0) if centre else torch.zeros_like(data[0])
            scale = (data - mean).square().mean(dim=0).sqrt()  # the standard deviation (ddof 0) when centred
            setattr(standardization, f"{prefix}_mean", mean)
            setattr(standardization, f"{prefix}_scale", torch.where(scale > 0, scale, torch.ones_like(scale)))
        if whiten:
            standardization.x_whitening = whitening_matrix(standardization.inputs(x.double()))
        return standardization

    @property
    def whitened(self) -> bool:
        return self.x_whitening.numel() > 0

    @property
    def is_identity(self) -> bool:
        means, scales = (self.x_mean, self.y_mean), (self.x_scale, self.y_scale)
        unscaled = all(bool((mean == 0).all()) for mean in means) and all(bool((scale == 1).all()) for scale in scales)
        return unscaled and not self.whitened

    # `.to(x)`: in the data's dtype and on its device (the DataModule's tensors stay on the CPU when the model,
    # and with it these buffers, moves to a GPU)
    # The identity returns its argument: a forward pass over a whole split (the record's train MSE, the fit
    # pictures) would otherwise copy it twice for nothing, 400 MiB at 2,000,000 x 32.
    def inputs(self, x: Tensor, whiten: bool = True) -> Tensor:
        """Raw inputs as trained; `whiten=False`: standardized only (where the exact optimum is computed)."""
        if self.is_identity:
            return x
        scaled = (x - self.x_mean.to(x)).div_(self.x_scale.to(x))
        return scaled @ self.x_whitening.to(x) if self.whitened and whiten else scaled

    def targets(self, y: Tensor) -> Tensor:
        return y if self.is_identity else (y - self.y_mean.to(y)).div_(self.y_scale.to(y))

    def outputs(self, y: Tensor) -> Tensor:
        """Standardized predictions (or targets) back in the target's units."""
        return y if self.is_identity else (y * self.y_scale.to(y)).add_(self.y_mean.to(y))

    def linear_in_original_units(
        self, weight: Tensor, bias: Tensor | None, whitened: bool = True
    ) -> tuple[Tensor, Tensor | None]:
        """The weight (out, in) and bias (out,) of y = x @ W.T + b in the data's units, from the trained ones,
        in float64: whitened weights first to standardized ones, W_s = W_w @ (√N·R⁻¹).T (unless `whitened=False`:
        `weight` is standardized already); then W = W_s * y_scale / x_scale and b = y_scale * b_s + y_mean -
        W @ x_mean. No bias (a model without one) stays None."""
        weight = weight.detach().double()
        if self.whitened and whitened:
            weight = weight @ self.x_whitening.T
        original = weight * self.y_scale.unsqueeze(1) / self.x_scale.unsqueeze(0)
        if bias is None:
            return original, None
        return original, self.y_scale * bias.detach().double() + self.y_mean - original @ self.x_mean.expand(
            weight.shape[1]
        )


def whitening_matrix(scaled: Tensor) -> Tensor:
    """√N·R⁻¹ (d x d, float64) for the thin QR factorization scaled = QR: scaled @ it = √N·Q, whose columns have
    unit mean square and are orthogonal. Refuses linearly dependent columns, which have no R⁻¹."""
    r = torch.from_numpy(least_squares.triangular_factor(scaled))
    diagonal = r.diagonal().abs()
    if len(r) == 0 or diagonal.min() <= diagonal.max() * len(r) * torch.finfo(torch.float64).eps:
        column = int(diagonal.argmin()) + 1 if len(r) else 0
        raise InvalidInput(
            f"data.standardize: whiten needs linearly independent training columns, but input column {column} is "
            "constant or a combination of the others; expected such columns dropped, or data.standardize=true"
        )
    identity = torch.eye(len(r), dtype=torch.float64)
    return len(scaled) ** 0.5 * torch.linalg.solve_triangular(r, identity, upper=True)


def _take_saved_shapes(module: Standardization, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
    """The statistics' width is the data's, which a model built from its hyperparameters does not know yet
    (it starts as the identity): take the saved tensors' shapes instead of refusing them. A checkpoint written
    before whitening existed holds no `x_whitening`: it was not whitened."""
    state_dict.setdefault(prefix + "x_whitening", torch.zeros(0, 0, dtype=torch.float64))
    for name in ("x_mean", "x_scale", "y_mean", "y_scale", "x_whitening"):
        saved = state_dict.get(prefix + name)
        if isinstance(saved, Tensor):
            setattr(module, name, torch.empty_like(saved, dtype=torch.float64))
