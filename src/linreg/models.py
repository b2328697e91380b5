"""The regression models: LightningModules that differ only in their network.

`Regression` says what one step is (MSE loss; validation and test scored with torchmetrics: MSE, MAE, R2)
and takes its optimizer from the config as a partial (`conf/optimizer/`). A model is a subclass that sets
`self.network`; adding one is a class here (or in your own allowlisted module) and a YAML file in
`conf/model/`. Hyperparameters are plain numbers and lists, so a checkpoint loads with `weights_only=True`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import lightning as L
import torch
from torch import Tensor, nn
from torchmetrics import MeanAbsoluteError, MeanSquaredError, MetricCollection
from torchmetrics.regression import R2Score

from linreg.config import require_choice, require_sizes
from linreg.errors import InvalidInput
from linreg.standardization import Standardization

OptimizerFactory = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]


class Regression(L.LightningModule):
    """Trains `self.network` (set by the subclass) on the mean squared error with `optimizer`.

    `optimizer` is a partial taking the parameters (`_partial_: true` in `conf/optimizer/`); a model loaded
    for prediction has none.

    The batches it trains and is scored on come standardized (`data.standardize`; the identity otherwise):
    `self.network` learns in those units, and `self.standardization` (buffers, saved in the checkpoint)
    holds the statistics, so `forward` takes raw inputs and the metrics are in the target's own units
    (`linreg.standardization` says why).
    """

    network: nn.Module

    def __init__(self, optimizer: OptimizerFactory | None = None) -> None:
        super().__init__()
        # Collects the subclass's __init__ arguments too. logger=False: train() logs one flat set of
        # hyperparameters with the final metrics (HPARAMS tab). The optimizer is a function, not a number.
        self.save_hyperparameters(ignore=["optimizer"], logger=False)
        self.optimizer = optimizer
        self.standardization = Standardization()
        self.loss = nn.MSELoss()
        errors = MetricCollection({"mse": MeanSquaredError(), "mae": MeanAbsoluteError()})
        self.val_errors = errors.clone(prefix="val/")
        self.test_errors = errors.clone(prefix="test/")
        # R2 is undefined below two samples (the seed data's test set is the single point x = 5).
        self.val_r2 = R2Score(multioutput="uniform_average")
        self.test_r2 = R2Score(multioutput="uniform_average")

    def forward(self, x: Tensor) -> Tensor:
        """Inference in the data's units: raw inputs in, predictions in the target's units out."""
        return self.standardization.outputs(self.network(self.standardization.inputs(x)))

    def learned_parameters(self) -> dict[str, Any]:
        """Numbers worth printing and tabulating after training (a linear model's w and b); none by default."""
        return {}

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x, y = batch  # standardized: the loss and its gradient are those of the data as trained
        return self.loss(self.network(x), y)

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._score(batch, self.val_errors, self.val_r2)

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._score(batch, self.test_errors, self.test_r2)

    def on_validation_epoch_end(self) -> None:
        self._log_r2(self.val_r2, "val/r2")

    def on_test_epoch_end(self) -> None:
        self._log_r2(self.test_r2, "test/r2")

    def predict_step(self, batch: Tensor | tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x = batch[0] if isinstance(batch, tuple | list) else batch  # the DataModule's: standardized
        return self.standardization.outputs(self.network(x))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        if self.optimizer is None:
            raise InvalidInput("optimizer: none given; expected a model built for training, with optimizer=...")
        return self.optimizer(self.parameters())

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Loading goes through this class (`linreg.checkpoint.load_model`), whatever the model is.
        checkpoint["model_class"] = f"{type(self).__module__}.{type(self).__qualname__}"

    def _score(self, batch: tuple[Tensor, Tensor], errors: MetricCollection, r2: R2Score) -> None:
        x, y = batch  # standardized; scored back in the target's units
        y_pred, y = self.standardization.outputs(self.network(x)), self.standardization.outputs(y)
        errors.update(y_pred, y)
        r2.update(y_pred, y)
        self.log_dict(errors, on_step=False, on_epoch=True)

    def _log_r2(self, r2: R2Score, name: str) -> None:
        if int(r2.total) >= 2:
            # compute() already gathers all ranks; sync_dist only averages identical values (and stops a warning)
            self.log(name, r2.compute(), sync_dist=True)
        r2.reset()


class LinearRegression(Regression):
    """The notebook's model: y = x @ W.T + b, one `nn.Linear`."""

    def __init__(self, in_features: int = 1, out_features: int = 1, optimizer: OptimizerFactory | None = None) -> None:
        super().__init__(optimizer)
        self.network = nn.Linear(in_features, out_features)

    def learned_parameters(self) -> dict[str, Any]:
        """W and b in the data's units; beside them, when the data was standardized, the ones trained."""
        weight, bias = self.network.weight.detach(), self.network.bias.detach()
        if self.standardization.is_identity:
            return {"weight": weight.tolist(), "bias": bias.tolist()}
        original_weight, original_bias = self.standardization.linear_in_original_units(weight, bias)
        return {
            "weight": original_weight.tolist(),
            "bias": original_bias.tolist(),
            "standardized_weight": weight.tolist(),
            "standardized_bias": bias.tolist(),
        }


ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU, "sigmoid": nn.Sigmoid}


class MLPRegression(Regression):
    """A small multilayer perceptron: `hidden` layer sizes, each followed by `activation`, then a linear output."""

    def __init__(
        self,
        in_features: int = 1,
        out_features: int = 1,
        hidden: Sequence[int] = (16, 16),
        activation: str = "tanh",
        optimizer: OptimizerFactory | None = None,
    ) -> None:
        require_choice("model.activation", activation, ACTIVATIONS)
        require_sizes("model.hidden", hidden)
        super().__init__(optimizer)
        sizes = [in_features, *hidden]
        layers: list[nn.Module] = []
        for size_in, size_out in itertools.pairwise(sizes):
            layers += [nn.Linear(size_in, size_out), ACTIVATIONS[activation]()]
        self.network = nn.Sequential(*layers, nn.Linear(sizes[-1], out_features))
