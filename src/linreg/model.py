"""The notebook's last cell as a LightningModule: nn.Linear, nn.MSELoss and torch.optim.SGD.

Lightning runs the loop the notebook wrote by hand (forward, loss, backward, step, zero_grad); this module
only says what one step is. Validation and test are scored with torchmetrics: MSE, MAE and R2.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch
from torch import Tensor, nn
from torchmetrics import MeanAbsoluteError, MeanSquaredError, MetricCollection
from torchmetrics.regression import R2Score

from linreg.checkpoint import linear_from_checkpoint, read_checkpoint

HPARAMS = ("in_features", "out_features", "lr", "momentum", "weight_decay")


class LinearRegression(L.LightningModule):
    """y = x @ W.T + b trained by SGD on the mean squared error.

    Hyperparameters are plain numbers, so a checkpoint loads with `weights_only=True`.
    """

    def __init__(
        self,
        in_features: int = 1,
        out_features: int = 1,
        lr: float = 0.001,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__()
        # logger=False: train() logs one flat set of hyperparameters with the final metrics (HPARAMS tab).
        self.save_hyperparameters(logger=False)
        self.linear = nn.Linear(in_features, out_features)
        self.loss = nn.MSELoss()
        errors = MetricCollection({"mse": MeanSquaredError(), "mae": MeanAbsoluteError()})
        self.val_errors = errors.clone(prefix="val/")
        self.test_errors = errors.clone(prefix="test/")
        # R2 is undefined below two samples (the seed data's test set is the single point x = 5).
        self.val_r2 = R2Score(multioutput="uniform_average")
        self.test_r2 = R2Score(multioutput="uniform_average")

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(x)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x, y = batch
        return self.loss(self(x), y)

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._score(batch, self.val_errors, self.val_r2)

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._score(batch, self.test_errors, self.test_r2)

    def on_validation_epoch_end(self) -> None:
        self._log_r2(self.val_r2, "val/r2")

    def on_test_epoch_end(self) -> None:
        self._log_r2(self.test_r2, "test/r2")

    def predict_step(self, batch: Tensor | tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x = batch[0] if isinstance(batch, tuple | list) else batch
        return self(x)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(
            self.parameters(),
            lr=self.hparams.lr,
            momentum=self.hparams.momentum,
            weight_decay=self.hparams.weight_decay,
        )

    def _score(self, batch: tuple[Tensor, Tensor], errors: MetricCollection, r2: R2Score) -> None:
        x, y = batch
        y_pred = self(x)
        errors.update(y_pred, y)
        r2.update(y_pred, y)
        self.log_dict(errors, on_step=False, on_epoch=True)

    def _log_r2(self, r2: R2Score, name: str) -> None:
        if int(r2.total) >= 2:
            # compute() already gathers all ranks; sync_dist only averages identical values (and stops a warning)
            self.log(name, r2.compute(), sync_dist=True)
        r2.reset()


def load_model(path: str | Path) -> LinearRegression:
    """A trained model from a checkpoint file, read safely (see `linreg.checkpoint`)."""
    checkpoint = read_checkpoint(path)
    linear = linear_from_checkpoint(checkpoint, path)
    hparams = checkpoint["hyper_parameters"]
    model = LinearRegression(**{key: hparams[key] for key in HPARAMS if key in hparams})
    model.linear.load_state_dict(linear.state_dict())
    return model.eval()
