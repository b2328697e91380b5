"""Many linear members trained as one model: what the batched launcher (`hydra/launcher=batched`) fits.

A sweep's jobs that differ only in what an optimizer's parameter group or a member's own weights hold (lr,
momentum, weight decay, iters, the seed of the initial weights) train as one Lightning run of `StackedLinear`.
Member k's weight and bias are parameters of their own, in a parameter group with job k's optimizer settings;
the predictions of all members come from one batched matmul; the loss is the sum of the members' MSEs, so each
member's gradient is that of its own loss, as in its own run. A member stops, its gradient dropped so that the
optimizer leaves its weights and momentum alone, at its own `iters` or once its loss was NaN or infinite.

With torch's SGD (the default) the members' weights are instead one stacked tensor (K x out x in, and K x out
for the biases) updated by `StackedSGD`, SGD's arithmetic with each member's settings in a row: 128 parameter
groups cost the optimizer, `zero_grad` and autograd a walk over 256 small tensors every step (3.4 ms a step for
128 members), the stacked update a few tensor operations.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import lightning as L
import torch
from torch import Tensor, nn
from torchmetrics.functional import mean_absolute_error, mean_squared_error, r2_score

from linreg.standardization import Standardization

# The settings `StackedSGD` does member by member; SGD with any other (`maximize`, `fused`...) keeps its groups.
STACKED_SGD_OPTIONS = ("lr", "momentum", "dampening", "weight_decay", "nesterov")


class StackedLinear(L.LightningModule):
    """K linear members y_k = x @ W_k.T + b_k, each with its optimizer settings (`options[k]`, keyword arguments
    of `optimizer_class`), trained together; `active[k]` turns false when member k stops."""

    def __init__(self, members: Sequence[nn.Linear], optimizer_class: type, options: Sequence[dict[str, Any]]) -> None:
        super().__init__()
        with_bias = [member.bias is not None for member in members]
        if len(set(with_bias)) > 1:
            raise ValueError("members with and without a bias cannot be stacked")
        self.has_bias = with_bias[0]
        self.optimizer_class, self.options = optimizer_class, [dict(option) for option in options]
        self.stacked = optimizer_class is torch.optim.SGD and all(set(o) <= set(STACKED_SGD_OPTIONS) for o in options)
        weights = [member.weight.detach().clone() for member in members]
        biases = [member.bias.detach().clone() for member in members if self.has_bias]
        if self.stacked:
            self.weight = nn.Parameter(torch.stack(weights))
            self.bias = nn.Parameter(torch.stack(biases)) if self.has_bias else None
        else:
            self.weights = nn.ParameterList(nn.Parameter(weight) for weight in weights)
            self.biases = nn.ParameterList(nn.Parameter(bias) for bias in biases)
        self.register_buffer("active", torch.ones(len(members), dtype=torch.bool), persistent=False)
        self.losses: Tensor | None = None  # the last training step's loss of every member

    def __len__(self) -> int:
        return len(self.active)

    def member_parameters(self, k: int) -> list[Tensor]:
        """Member k's weight and bias (stacked: rows of the stacked tensors), in the order its own model's
        `parameters()` gives them."""
        if self.stacked:
            return [self.weight[k], self.bias[k]] if self.has_bias else [self.weight[k]]
        return [self.weights[k], self.biases[k]] if self.has_bias else [self.weights[k]]

    def member_predictions(self, x: Tensor) -> Tensor:
        """Every member's predictions for `x` (N x in): K x N x out, in the units trained."""
        weight = self.weight if self.stacked else torch.stack(tuple(self.weights))
        predictions = torch.matmul(x, weight.transpose(1, 2))
        if self.has_bias:
            bias = self.bias if self.stacked else torch.stack(tuple(self.biases))
            predictions = predictions + bias.unsqueeze(1)
        return predictions

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x, y = batch
        self.losses = ((self.member_predictions(x) - y) ** 2).mean(dim=(1, 2))
        # A stopped member's loss may be NaN: `where`, not a product, keeps it out of the sum and its gradient.
        return torch.where(self.active, self.losses, torch.zeros_like(self.losses)).sum()

    def on_after_backward(self) -> None:
        # No gradient at all (not a zero one): SGD's momentum and weight decay would still move a zero-gradient
        # member, while the optimizer skips a parameter without a gradient. (`StackedSGD` reads `active` itself.)
        if self.stacked:
            return
        for k in torch.nonzero(~self.active).flatten().tolist():
            for parameter in self.member_parameters(k):
                parameter.grad = None

    def configure_optimizers(self) -> torch.optim.Optimizer:
        if self.stacked:
            parameters = [self.weight, self.bias] if self.has_bias else [self.weight]
            return StackedSGD(parameters, self.options, self.active)
        groups = [{"params": self.member_parameters(k), **self.options[k]} for k in range(len(self))]
        return self.optimizer_class(groups)

    def copy_member_into(self, k: int, network: nn.Linear) -> None:
        """Member k's current weights into `network` (its own model's, in this module's dtype)."""
        with torch.no_grad():
            for own, member in zip(network.parameters(), self.member_parameters(k), strict=True):
                own.copy_(member)

    def member_optimizer_state(self, k: int) -> dict[str, Any]:
        """Member k's part of the optimizer's state, as the optimizer of its own run would save it."""
        if self.stacked:
            return self.trainer.optimizers[0].member_state_dict(k)
        state = self.trainer.optimizers[0].state
        parameters = self.member_parameters(k)
        group = {key: value for key, value in self.trainer.optimizers[0].param_groups[k].items() if key != "params"}
        return {
            "state": {i: state[p] for i, p in enumerate(parameters) if p in state},
            "param_groups": [{**group, "params": list(range(len(parameters)))}],
        }


class StackedSGD(torch.optim.Optimizer):
    """`torch.optim.SGD` on stacked parameters (row k of each is member k's) with member k's settings
    (`options[k]`, of STACKED_SGD_OPTIONS), in SGD's own order of operations: weight decay, momentum (the first
    step's buffer a copy of the gradient), Nesterov, the step. A member whose `active[k]` is false keeps its
    weights and momentum buffer, as SGD leaves a parameter without a gradient alone."""

    def __init__(self, params: Sequence[Tensor], options: Sequence[dict[str, Any]], active: Tensor) -> None:
        super().__init__(params, {})
        self.active = active
        # Each member's group as its own SGD holds it (every default filled in), for its checkpoint.
        self.member_groups = [torch.optim.SGD([torch.zeros(1)], **option).param_groups[0] for option in options]
        for group in self.member_groups:
            del group["params"]

        def column(key: str) -> Tensor:
            # float64, as SGD's Python numbers: `1 - dampening` is rounded to the parameters' dtype once, as there
            return torch.tensor([float(group[key]) for group in self.member_groups], dtype=torch.float64).to(
                active.device
            )

        self.lr, self.momentum, self.dampening = column("lr"), column("momentum"), column("dampening")
        self.weight_decay, self.nesterov = column("weight_decay"), column("nesterov").bool()

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for param in self.param_groups[0]["params"]:
            if param.grad is not None:
                self._update(param, param.grad)
        return loss

    def _update(self, param: Tensor, grad: Tensor) -> None:
        # SGD's `a.add(b, alpha=c)` is one fused multiply-add per element on the CPU: `addcmul` with c per member
        # rounds as it does (a product and a sum rounded apart would not), so each member's numbers are its run's.
        shape = (-1,) + (1,) * (param.dim() - 1)  # a member's setting against its row

        def per_member(values: Tensor) -> Tensor:
            return values.to(param.dtype).view(shape) if values.is_floating_point() else values.view(shape)

        moving, with_momentum = per_member(self.active), per_member(self.momentum != 0)
        decayed = torch.addcmul(grad, param, per_member(self.weight_decay))
        decayed = torch.where(per_member(self.weight_decay != 0), decayed, grad)
        state = self.state[param]
        buffer = state.get("momentum_buffer")
        if buffer is None:
            new_buffer = decayed.clone()
        else:
            new_buffer = torch.addcmul(buffer * per_member(self.momentum), decayed, per_member(1 - self.dampening))
        nesterov = torch.addcmul(decayed, new_buffer, per_member(self.momentum))
        direction = torch.where(with_momentum, torch.where(per_member(self.nesterov), nesterov, new_buffer), decayed)
        param.copy_(torch.where(moving, torch.addcmul(param, direction, per_member(-self.lr)), param))
        kept = new_buffer if buffer is None else torch.where(moving & with_momentum, new_buffer, buffer)
        state["momentum_buffer"] = kept

    def member_state_dict(self, k: int) -> dict[str, Any]:
        """Member k's part, as its own SGD's `state_dict()` would give it: a momentum buffer per parameter where
        its momentum is not 0, and its group."""
        params = self.param_groups[0]["params"]
        state = {}
        if self.member_groups[k]["momentum"] != 0:
            buffers = [self.state[param].get("momentum_buffer") for param in params]
            state = {
                i: {"momentum_buffer": buffer[k].clone()} for i, buffer in enumerate(buffers) if buffer is not None
            }
        return {"state": state, "param_groups": [{**self.member_groups[k], "params": list(range(len(params)))}]}


def member_scores(
    model: StackedLinear, x: Tensor, y: Tensor, standardization: Standardization, stage: str
) -> list[dict[str, float]]:
    """Each member's scores on a split served in the units trained (`x`, `y`), in the target's units, named
    as the models log them (`val/mse`, ...): torchmetrics' own formulas, R2 only from two samples on.

    Every member at once: its predictions are columns of one N x (K * outputs) table, scored column by column
    (`num_outputs`, `raw_values`), and a member's score is the mean over its outputs, as a run's metric over
    all its outputs is (`uniform_average`; MSE and MAE over every element). The table is laid out in memory as
    a run's N x outputs is (one output: a column in a row; several: row by row), so that the sums add in the
    same order: R2's `1 - rss / tss` near 0 would show float32's other roundings."""
    with torch.no_grad():
        predictions = standardization.outputs(model.member_predictions(x))  # K x N x outputs
        target = standardization.outputs(y)  # N x outputs
    members, rows, outputs = predictions.shape
    if outputs == 1:
        columns, expected = predictions[..., 0].T, target.T.repeat(members, 1).T  # N x K, a column per member
    else:
        columns, expected = predictions.transpose(0, 1).reshape(rows, members * outputs), target.repeat(1, members)
    per_output = {
        "mse": mean_squared_error(columns, expected, num_outputs=members * outputs),
        "mae": mean_absolute_error(columns, expected, num_outputs=members * outputs),
    }
    if rows >= 2:
        per_output["r2"] = r2_score(columns, expected, multioutput="raw_values")
    by_member = {name: values.view(members, outputs).mean(dim=1).tolist() for name, values in per_output.items()}
    return [{f"{stage}/{name}": values[k] for name, values in by_member.items()} for k in range(members)]
