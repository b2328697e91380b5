"""Standardization (`data.standardize`): inputs and target centred and scaled by the training split's statistics.

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
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn


class Standardization(nn.Module):
    """x -> (x - x_mean) / x_scale and y -> (y - y_mean) / y_scale, and back for the outputs.

    Built without statistics it is the identity (means 0, scales 1, shape (1,) broadcasting over any width).
    The buffers are created float64 and cast to the data's dtype where applied, so that float32 training
    keeps exact statistics for the conversion back to the data's units.
    """

    x_mean: Tensor
    x_scale: Tensor
    y_mean: Tensor
    y_scale: Tensor

    def __init__(self) -> None:
        super().__init__()
        for name, value in (("x_mean", 0.0), ("x_scale", 1.0), ("y_mean", 0.0), ("y_scale", 1.0)):
            self.register_buffer(name, torch.tensor([value], dtype=torch.float64))
        self.register_load_state_dict_pre_hook(_take_saved_shapes)

    @classmethod
    def of(cls, x: Tensor, y: Tensor) -> Standardization:
        """The statistics of (x, y), the training split: mean and standard deviation (ddof 0) per column."""
        standardization = cls()
        for prefix, data in (("x", x), ("y", y)):
            data = data.double()
            scale = data.std(dim=0, correction=0)
            setattr(standardization, f"{prefix}_mean", data.mean(dim=0))
            setattr(standardization, f"{prefix}_scale", torch.where(scale > 0, scale, torch.ones_like(scale)))
        return standardization

    @property
    def is_identity(self) -> bool:
        means, scales = (self.x_mean, self.y_mean), (self.x_scale, self.y_scale)
        return all(bool((mean == 0).all()) for mean in means) and all(bool((scale == 1).all()) for scale in scales)

    # `.to(x)`: in the data's dtype and on its device (the DataModule's tensors stay on the CPU when the model,
    # and with it these buffers, moves to a GPU)
    # The identity returns its argument: a forward pass over a whole split (the record's train MSE, the fit
    # pictures) would otherwise copy it twice for nothing, 400 MiB at 2,000,000 x 32.
    def inputs(self, x: Tensor) -> Tensor:
        return x if self.is_identity else (x - self.x_mean.to(x)).div_(self.x_scale.to(x))

    def targets(self, y: Tensor) -> Tensor:
        return y if self.is_identity else (y - self.y_mean.to(y)).div_(self.y_scale.to(y))

    def outputs(self, y: Tensor) -> Tensor:
        """Standardized predictions (or targets) back in the target's units."""
        return y if self.is_identity else (y * self.y_scale.to(y)).add_(self.y_mean.to(y))

    def linear_in_original_units(self, weight: Tensor, bias: Tensor) -> tuple[Tensor, Tensor]:
        """The weight (out, in) and bias (out,) of y = x @ W.T + b in the data's units, from the standardized
        ones, in float64: W = W_s * y_scale / x_scale and b = y_scale * b_s + y_mean - W @ x_mean."""
        weight, bias = weight.detach().double(), bias.detach().double()
        original = weight * self.y_scale.unsqueeze(1) / self.x_scale.unsqueeze(0)
        return original, self.y_scale * bias + self.y_mean - original @ self.x_mean.expand(weight.shape[1])


def _take_saved_shapes(module: Standardization, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
    """The statistics' width is the data's, which a model built from its hyperparameters does not know yet
    (it starts as the identity): take the saved tensors' shapes instead of refusing them."""
    for name in ("x_mean", "x_scale", "y_mean", "y_scale"):
        saved = state_dict.get(prefix + name)
        if isinstance(saved, Tensor):
            setattr(module, name, torch.empty_like(saved, dtype=torch.float64))
