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

from linreg.checks import require_choice, require_sizes
from linreg.errors import InvalidInput
from linreg.standardization import Standardization

OptimizerFactory = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]


def _errors(prefix: str) -> MetricCollection:
    """A stage's MSE and MAE, made anew: a clone of one collection deep-copies it, twice the cost (a batched
    sweep makes a model per job)."""
    return MetricCollection({"mse": MeanSquaredError(), "mae": MeanAbsoluteError()}, prefix=prefix)


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
        self.val_errors, self.test_errors = _errors("val/"), _errors("test/")
        # R2 is undefined below two samples (the seed data's test set is the single point x = 5).
        self.val_r2 = R2Score(multioutput="uniform_average")
        self.test_r2 = R2Score(multioutput="uniform_average")
        self.scores: dict[str, dict[str, float]] = {}  # the last validation's and test's, by stage
        self.val_curve: list[tuple[int, float]] = []  # (step, val MSE) of each validation, for the sweep plot

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

    def on_fit_start(self) -> None:
        # The validation at step 0 ran under inference mode and left its reset states as inference tensors,
        # which fit's validations (no_grad only) may not update in place: fresh ones.
        self.val_errors.reset()
        self.val_r2.reset()

    def on_validation_epoch_end(self) -> None:
        self.scores["val"] = self._report("val", self.val_errors, self.val_r2)

    def on_test_epoch_end(self) -> None:
        self.scores["test"] = self._report("test", self.test_errors, self.test_r2)

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
        checkpoint["val_curve"] = self.val_curve  # a resumed run's curve starts where the first one's did

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.val_curve = [(int(step), float(value)) for step, value in checkpoint.get("val_curve", [])]

    def _score(self, batch: tuple[Tensor, Tensor], errors: MetricCollection, r2: R2Score) -> None:
        x, y = batch  # standardized; scored back in the target's units
        y_pred, y = self.standardization.outputs(self.network(x)), self.standardization.outputs(y)
        errors.update(y_pred, y)
        r2.update(y_pred, y)

    def _report(self, stage: str, errors: MetricCollection, r2: R2Score) -> dict[str, float]:
        """The stage's scores over the whole split (all ranks): R2 only from two samples on, absent below.

        They reach the loggers straight, at the optimizer step: through `self.log` Lightning would add an
        `epoch` chart that sorts before the curves. `self.log(logger=False)` still gives them to callbacks
        (early stopping on `val/mse`) and to `trainer.validate`'s return. The validation MSE is the curve
        `loss/val`, beside `loss/train`, so TensorBoard's first section shows both.
        """
        scores = {name: float(value) for name, value in errors.compute().items()}
        if int(r2.total) >= 2:
            scores[f"{stage}/r2"] = float(r2.compute())
        errors.reset()
        r2.reset()
        if self.trainer.sanity_checking:
            return scores
        self.log_dict(scores, logger=False, sync_dist=True)  # already global: averages equal values
        if stage == "val":
            if self.val_curve and self.val_curve[-1][0] == self.global_step:
                return scores  # the final validation of a run that was validated at its last step: drawn already
            self.val_curve.append((self.global_step, scores["val/mse"]))
        tags = {LOGGED_AS.get(name, name): value for name, value in scores.items()}
        for logger in self.loggers:
            logger.log_metrics(tags, step=self.global_step)
        return scores


# The validation MSE is the validation loss: drawn in the `loss` section with the training loss.
LOGGED_AS = {"val/mse": "loss/val"}


class LinearRegression(Regression):
    """The notebook's model: y = x @ W.T + b, one `nn.Linear`; with `bias=False` (`model.bias=false`) y = x @ W.T,
    a regression through the origin, the notebook's `nn.Linear(bias=False)`."""

    def __init__(
        self,
        in_features: int = 1,
        out_features: int = 1,
        bias: bool = True,
        optimizer: OptimizerFactory | None = None,
    ) -> None:
        if not isinstance(bias, bool):
            raise InvalidInput(f"model.bias: {bias!r} is not allowed; expected true or false")
        super().__init__(optimizer)
        self.network = nn.Linear(in_features, out_features, bias=bias)

    def learned_parameters(self) -> dict[str, Any]:
        """W and b in the data's units; beside them, when the data was standardized, the ones trained. A model
        without bias has no `bias` key: there is no such parameter."""
        weight = self.network.weight.detach()
        bias = None if self.network.bias is None else self.network.bias.detach()
        trained = {"weight": weight.tolist(), **({} if bias is None else {"bias": bias.tolist()})}
        if self.standardization.is_identity:
            return trained
        original_weight, original_bias = self.standardization.linear_in_original_units(weight, bias)
        return {
            "weight": original_weight.tolist(),
            **({} if original_bias is None else {"bias": original_bias.tolist()}),
            **{f"standardized_{key}": value for key, value in trained.items()},
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
