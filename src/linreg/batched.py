"""Many linear members trained as one model: what the batched launcher (`hydra/launcher=batched`) fits.

A sweep's jobs that differ only in what an optimizer's parameter group or a member's own weights hold (lr,
momentum, weight decay, iters, the seed of the initial weights) train as one Lightning run of `StackedLinear`.
Member k's weight and bias are parameters of their own, in a parameter group with job k's optimizer settings;
the predictions of all members come from one batched matmul; the loss is the sum of the members' MSEs, so each
member's gradient is that of its own loss, as in its own run. A member stops, its gradient dropped so that the
optimizer leaves its weights and momentum alone, at its own `iters` or once its loss was NaN or infinite.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import lightning as L
import torch
from torch import Tensor, nn
from torchmetrics.functional import mean_absolute_error, mean_squared_error, r2_score

from linreg.standardization import Standardization


class StackedLinear(L.LightningModule):
    """K linear members y_k = x @ W_k.T + b_k, each with its optimizer settings (`options[k]`, keyword arguments
    of `optimizer_class`), trained together; `active[k]` turns false when member k stops."""

    def __init__(self, members: Sequence[nn.Linear], optimizer_class: type, options: Sequence[dict[str, Any]]) -> None:
        super().__init__()
        self.weights = nn.ParameterList(nn.Parameter(member.weight.detach().clone()) for member in members)
        with_bias = [member.bias is not None for member in members]
        if len(set(with_bias)) > 1:
            raise ValueError("members with and without a bias cannot be stacked")
        self.has_bias = with_bias[0]
        self.biases = nn.ParameterList(
            nn.Parameter(member.bias.detach().clone()) for member in members if self.has_bias
        )
        self.optimizer_class, self.options = optimizer_class, [dict(option) for option in options]
        self.register_buffer("active", torch.ones(len(members), dtype=torch.bool), persistent=False)
        self.losses: Tensor | None = None  # the last training step's loss of every member

    def __len__(self) -> int:
        return len(self.weights)

    def member_parameters(self, k: int) -> list[nn.Parameter]:
        """Member k's weight and bias, in the order its own model's `parameters()` gives them."""
        return [self.weights[k], self.biases[k]] if self.has_bias else [self.weights[k]]

    def member_predictions(self, x: Tensor) -> Tensor:
        """Every member's predictions for `x` (N x in): K x N x out, in the units trained."""
        predictions = torch.matmul(x, torch.stack(tuple(self.weights)).transpose(1, 2))
        if self.has_bias:
            predictions = predictions + torch.stack(tuple(self.biases)).unsqueeze(1)
        return predictions

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x, y = batch
        self.losses = ((self.member_predictions(x) - y) ** 2).mean(dim=(1, 2))
        # A stopped member's loss may be NaN: `where`, not a product, keeps it out of the sum and its gradient.
        return torch.where(self.active, self.losses, torch.zeros_like(self.losses)).sum()

    def on_after_backward(self) -> None:
        # No gradient at all (not a zero one): SGD's momentum and weight decay would still move a zero-gradient
        # member, while the optimizer skips a parameter without a gradient.
        for k in torch.nonzero(~self.active).flatten().tolist():
            for parameter in self.member_parameters(k):
                parameter.grad = None

    def configure_optimizers(self) -> torch.optim.Optimizer:
        groups = [{"params": self.member_parameters(k), **self.options[k]} for k in range(len(self))]
        return self.optimizer_class(groups)

    def copy_member_into(self, k: int, network: nn.Linear) -> None:
        """Member k's current weights into `network` (its own model's, in this module's dtype)."""
        with torch.no_grad():
            network.weight.copy_(self.weights[k])
            if self.has_bias:
                network.bias.copy_(self.biases[k])

    def member_optimizer_state(self, k: int) -> dict[str, Any]:
        """Member k's part of the optimizer's state, as the optimizer of its own run would save it."""
        state = self.trainer.optimizers[0].state
        parameters = self.member_parameters(k)
        group = {key: value for key, value in self.trainer.optimizers[0].param_groups[k].items() if key != "params"}
        return {
            "state": {i: state[p] for i, p in enumerate(parameters) if p in state},
            "param_groups": [{**group, "params": list(range(len(parameters)))}],
        }


def member_scores(
    model: StackedLinear, x: Tensor, y: Tensor, standardization: Standardization, stage: str
) -> list[dict[str, float]]:
    """Each member's scores on a split served in the units trained (`x`, `y`), in the target's units, named
    as the models log them (`val/mse`, ...): torchmetrics' own formulas, R2 only from two samples on."""
    with torch.no_grad():
        predictions = standardization.outputs(model.member_predictions(x))
        target = standardization.outputs(y)
    scores = []
    for prediction in predictions:
        score = {
            f"{stage}/mse": float(mean_squared_error(prediction, target)),
            f"{stage}/mae": float(mean_absolute_error(prediction, target)),
        }
        if len(target) >= 2:
            score[f"{stage}/r2"] = float(r2_score(prediction, target, multioutput="uniform_average"))
        scores.append(score)
    return scores
