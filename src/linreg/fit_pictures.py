"""Pictures of the fit: TensorBoard's IMAGES tab shows the model settling, and `fit.png` the final state.

One input and one output: the data (train, validation, test) with the model's prediction over the input's
range and the least-squares line. More: predicted against true for every split, with the diagonal a perfect
fit lies on. Drawn at step 0, at 100, 1000, ... steps and at the end of training, under the tag
`prediction/fit` (after the `loss` section, which TensorBoard shows first). matplotlib's Figure API with the
Agg canvas, imported only when a picture is drawn; each picture is rendered once, and the same pixels go to
TensorBoard and to `fit.png`. A default run draws three, about 0.35 s of CPU on a 2-core machine;
`~callbacks.fit_pictures` turns them off.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import TYPE_CHECKING

import lightning as L
import numpy as np
import torch
from lightning.pytorch.loggers import TensorBoardLogger

from linreg.least_squares import Optimum, optimum
from linreg.results import write_atomically

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from linreg.sources import Split, Splits

TAG = "prediction/fit"
FILE = "fit.png"
MAX_POINTS = 2000  # per split: enough to see the cloud, few enough to draw in milliseconds


class FitPictures(L.Callback):
    """Logs the fit picture to TensorBoard at step 0, at every power of ten from 100 on and at the end; the
    last one is also saved as `fit.png` in the run folder (`trainer.default_root_dir`)."""

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._splits = trainer.datamodule.splits
        self._optimum = optimum(self._splits.train.x, self._splits.train.y)
        if trainer.global_step == 0:
            self._log(trainer, pl_module)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: object) -> None:
        step = trainer.global_step
        if 100 <= step < trainer.max_steps and 10 ** round(math.log10(step)) == step:
            self._log(trainer, pl_module)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        pixels = self._log(trainer, pl_module)
        if pixels is not None:
            from matplotlib.image import imsave

            png = io.BytesIO()
            imsave(png, pixels, format="png")
            write_atomically(Path(trainer.default_root_dir) / FILE, png.getvalue())

    def _log(self, trainer: L.Trainer, pl_module: L.LightningModule) -> np.ndarray | None:
        """Draws the picture once and logs its pixels; returns them (in the writing process only)."""
        if not trainer.is_global_zero:
            return None
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        canvas = FigureCanvasAgg(draw(pl_module, self._splits, self._optimum, trainer.global_step))
        canvas.draw()
        pixels = np.asarray(canvas.buffer_rgba())
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                logger.experiment.add_image(TAG, pixels, trainer.global_step, dataformats="HWC")
        return pixels


def draw(model: torch.nn.Module, splits: Splits, best: Optimum, step: int) -> Figure:
    """The picture of `model`'s fit of `splits` at `step`, beside the least-squares optimum `best`."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 4), dpi=100)
    figure.subplots_adjust(left=0.11, right=0.97, top=0.91, bottom=0.12)  # fixed: a layout engine doubles the cost
    axes = figure.add_subplot()
    named = _named_splits(splits)
    train_mse = _mse(model, splits.train)
    axes.set_title(f"step {step}: train mse {train_mse:.3g} (least-squares optimum {best.mse:.3g})", fontsize=10)
    if splits.train.x.shape[1] == 1 and splits.train.y.shape[1] == 1:
        _draw_line(axes, model, named, best)
    else:
        _draw_predicted_against_true(axes, model, named)
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize=8, loc="upper left")  # fixed: "best" searches every point
    return figure


def _named_splits(splits: Splits) -> list[tuple[str, Split]]:
    """The splits to draw: validation only where it is not the training set itself (the notebook's data)."""
    named = [("train", splits.train)]
    if splits.val.x is not splits.train.x:
        named.append(("val", splits.val))
    return [*named, ("test", splits.test)]


def _draw_line(axes, model: torch.nn.Module, named: list[tuple[str, Split]], best: Optimum) -> None:
    for name, split in named:
        marker = "*" if name == "test" else "o"
        axes.plot(split.x[:MAX_POINTS, 0], split.y[:MAX_POINTS, 0], marker, markersize=5, alpha=0.7, label=name)
    xs = torch.cat([split.x[:, 0] for _, split in named])
    grid = torch.linspace(float(xs.min()), float(xs.max()), 200).unsqueeze(1)
    axes.plot(grid[:, 0], best.weight[0][0] * grid[:, 0] + best.bias[0], "--", color="gray", label="least squares")
    axes.plot(grid[:, 0], _predict(model, grid)[:, 0], "-", color="black", label="model")
    ys = torch.cat([split.y[:, 0] for _, split in named])
    _keep_in_view(axes.set_ylim, float(ys.min()), float(ys.max()))
    axes.set(xlabel="x", ylabel="y")


def _draw_predicted_against_true(axes, model: torch.nn.Module, named: list[tuple[str, Split]]) -> None:
    for name, split in named:
        predicted = _predict(model, split.x[:MAX_POINTS])
        marker = "*" if name == "test" else "o"
        axes.plot(split.y[:MAX_POINTS].ravel(), predicted.ravel(), marker, markersize=4, alpha=0.6, label=name)
    ys = torch.cat([split.y.ravel() for _, split in named])
    low, high = float(ys.min()), float(ys.max())
    axes.plot([low, high], [low, high], "--", color="gray", label="predicted = true")
    _keep_in_view(axes.set_ylim, low, high)
    axes.set(xlabel="true", ylabel="predicted")


def _keep_in_view(set_limits, low: float, high: float) -> None:
    """Axes framed by the data, so a far-off (or diverged) prediction leaves the frame instead of shrinking it."""
    margin = (high - low) * 0.5 or 1.0
    set_limits(low - margin, high + margin)


def _predict(model: torch.nn.Module, x: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return model(x.to(model.dtype)).double().numpy()


def _mse(model: torch.nn.Module, split: Split) -> float:
    return float(np.mean((_predict(model, split.x) - split.y.double().numpy()) ** 2))
