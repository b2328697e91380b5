"""Pictures of the fit: TensorBoard's IMAGES tab shows the model settling, and `fit.png` the final state.

One input and one output: the data (train, validation, test) with the model's prediction over the input's
range and the least-squares line. More: predicted against true for every split, with the diagonal a perfect
fit lies on. Drawn at step 0, at 100, 1000, ... steps and at the end of training, under the tag
`prediction/fit` (after the `loss` section, which TensorBoard shows first). A diverged run's picture says so
in its title, in red: its model's line has left the frame, and the data with the least-squares line alone
would look like a perfect fit.

What does not change during training (the data, the axes, the labels, the legend headed by the optimum's
MSE) is rendered once; each picture draws only the model's prediction and a short title over a copy of it
(matplotlib's blitting): a whole render, text above all, costs about as much as a hundred training steps.
A default run's three pictures cost about 0.2 s on a 2-core machine, mostly the first render (`make bench`
measures it); a batched sweep draws two per job, about 5 ms each. matplotlib's Figure API with the Agg
canvas, imported only when a picture is drawn; the last picture's PNG, encoded once, goes to TensorBoard
and to `fit.png`. `~callbacks.fit_pictures` turns them off.
"""

from __future__ import annotations

import math
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import lightning as L
import numpy as np
import torch
from lightning.pytorch.loggers import Logger, TensorBoardLogger

from linreg.least_squares import Optimum
from linreg.loss_monitor import LossMonitor
from linreg.record import write_atomically

if TYPE_CHECKING:
    from matplotlib.lines import Line2D

    from linreg.sources import Split, Splits

TAG = "prediction/fit"
FILE = "fit.png"
MAX_POINTS = 2000  # per split: enough to see the cloud, few enough to draw in milliseconds


class FitPictures(L.Callback):
    """Logs the fit picture to TensorBoard at step 0, at every power of ten from 100 on and at the end; the
    last one is also saved as `fit.png` in the run folder (`trainer.default_root_dir`)."""

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._picture: FitPicture | None = None
        if trainer.global_step == 0:
            self._log(trainer, pl_module)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: object) -> None:
        step = trainer.global_step
        if 100 <= step < trainer.max_steps and 10 ** round(math.log10(step)) == step:
            self._log(trainer, pl_module)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        png = self._log(trainer, pl_module)
        if png is not None:
            write_atomically(Path(trainer.default_root_dir) / FILE, png)

    def _log(self, trainer: L.Trainer, pl_module: L.LightningModule) -> bytes | None:
        """Renders the picture and logs it; returns its PNG (in the writing process only)."""
        if not trainer.is_global_zero:
            return None
        if self._picture is None:
            self._picture = FitPicture(trainer.datamodule.splits, trainer.datamodule.optimum)
        monitor = next((c for c in trainer.callbacks if isinstance(c, LossMonitor)), None)
        diverged_at = monitor.diverged_at_step if monitor else None
        pixels = self._picture.render(pl_module, trainer.global_step, diverged_at)
        png = encode_png(pixels)
        log_png(trainer.loggers, png, pixels.shape, trainer.global_step)
        return png


def encode_png(pixels: np.ndarray) -> bytes:
    """The picture (height x width x 3, uint8) as a PNG, encoded once for both TensorBoard and `fit.png`.

    The PNG format's own layout, written here: a header, the rows (each after a filter byte 0, none) deflated
    by zlib's level 2, an end. Pillow's encoder spends about 5 ms of a picture's 7 in handling the rows, and a
    batched sweep draws two pictures per job; zlib takes about 2 ms, for a file a tenth larger.
    """
    height, width, channels = pixels.shape
    rows = np.zeros((height, 1 + width * channels), dtype=np.uint8)  # filter type 0 before each row
    rows[:, 1:] = pixels.reshape(height, width * channels)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8 bits per channel, RGB, no interlace
    return b"\x89PNG\r\n\x1a\n" + b"".join(
        _png_chunk(kind, data)
        for kind, data in ((b"IHDR", header), (b"IDAT", zlib.compress(rows.tobytes(), 2)), (b"IEND", b""))
    )


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def log_png(loggers: Sequence[Logger], png: bytes, shape: tuple[int, ...], step: int) -> None:
    """An encoded picture (height x width x 3) into the TensorBoard `loggers` under `TAG`: the summary that
    `SummaryWriter.add_image` writes, without encoding it again."""
    from tensorboard.compat.proto.summary_pb2 import Summary

    height, width, channels = shape
    image = Summary.Image(height=height, width=width, colorspace=channels, encoded_image_string=png)
    summary = Summary(value=[Summary.Value(tag=TAG, image=image)])
    for logger in loggers:
        if isinstance(logger, TensorBoardLogger):
            # as add_image does: the writer is made anew where a stage's end closed it
            logger.experiment._get_file_writer().add_summary(summary, step)


class FitPicture:
    """The picture of a model's fit of `splits` beside the least-squares optimum `best`, at any step.

    `animated` artists are left out of the canvas's full render; `render` draws them over the saved
    background. `blit=False` renders every picture whole: the reference the blitted pixels must equal.
    """

    def __init__(self, splits: Splits, best: Optimum, blit: bool = True) -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        self._splits, self._best, self._blit = splits, best, blit
        figure = Figure(figsize=(7.5, 4), dpi=100)
        figure.subplots_adjust(left=0.09, right=0.79, top=0.91, bottom=0.12)  # fixed: a layout engine doubles the cost
        self._canvas = FigureCanvasAgg(figure)
        self._axes = figure.add_subplot()
        self._named = _named_splits(splits)
        if splits.train.x.shape[1] == 1 and splits.train.y.shape[1] == 1:
            self._grid = _grid(self._named)
            self._model_lines = _draw_line(self._axes, self._named, best, self._grid)
        else:
            self._grid = None
            self._model_lines = _draw_predicted_against_true(self._axes, self._named)
        self._axes.grid(True, alpha=0.3)
        self._axes.locator_params(nbins=5)  # every tick is a few artists and a text to render
        # beside the axes: the model's artists, drawn last, never cover it
        # the optimum's MSE heads the legend, drawn once, so that each picture's title is short (text is most
        # of a picture's render)
        self._axes.legend(
            fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0,
            title=f"optimum mse {best.mse:.3g}", title_fontsize=8,
        )  # fmt: skip
        self._title = self._axes.set_title("step 0", fontsize=10, y=1.01)  # a fixed place: no search for one
        for artist in [*self._model_lines, self._title]:
            artist.set(animated=blit, zorder=3)  # on top in a whole render too, where blitting draws them
        if blit:
            self._canvas.draw()
            self._background = self._canvas.copy_from_bbox(figure.bbox)

    def render(self, model: torch.nn.Module, step: int, diverged_at: int | None = None) -> np.ndarray:
        """The picture's RGB pixels (height x width x 3) for `model` at `step`; `diverged_at`: the step whose
        loss was not finite (a model that predicts NaN or infinity counts as diverged too)."""
        train_mse = _mse(model, self._splits.train)
        diverged = diverged_at is not None or not math.isfinite(train_mse)
        for line in self._model_lines:  # a diverged model's predictions are far off: drawn, they read as a fit
            line.set_visible(not diverged)
        if diverged:
            at = "" if diverged_at in (None, step) else f" at step {diverged_at}"
            text = f"step {step}: diverged{at}, the model is off the chart (train mse {train_mse:.3g})"
            self._title.set(text=text, color="red")
        else:
            text = f"step {step}: train mse {train_mse:.3g}"
            self._title.set(text=text, color="black")
        if self._grid is not None:
            (line,) = self._model_lines
            line.set_ydata(_predict(model, self._grid)[:, 0])
        else:
            for line, (_, split) in zip(self._model_lines, self._named, strict=True):
                line.set_ydata(_predict(model, split.x[:MAX_POINTS]).ravel())
        if self._blit:
            self._canvas.restore_region(self._background)
            for artist in [*self._model_lines, self._title]:
                self._axes.draw_artist(artist)
        else:
            self._canvas.draw()
        return np.asarray(self._canvas.buffer_rgba())[..., :3]  # opaque: the alpha channel is a fifth of the PNG


def _named_splits(splits: Splits) -> list[tuple[str, Split]]:
    """The splits to draw: validation only where it is not the training set itself (the notebook's data)."""
    named = [("train", splits.train)]
    if splits.val.x is not splits.train.x:
        named.append(("val", splits.val))
    return [*named, ("test", splits.test)]


def _grid(named: list[tuple[str, Split]]) -> torch.Tensor:
    """200 inputs across the range of every split's single input: where the model's line is drawn."""
    xs = torch.cat([split.x[:, 0] for _, split in named])
    return torch.linspace(float(xs.min()), float(xs.max()), 200).unsqueeze(1)


def _draw_line(axes, named: list[tuple[str, Split]], best: Optimum, grid: torch.Tensor) -> list[Line2D]:
    """The data and the least-squares line; returns the model's line, to be given its values per picture."""
    for name, split in named:
        marker = "*" if name == "test" else "o"
        axes.plot(split.x[:MAX_POINTS, 0], split.y[:MAX_POINTS, 0], marker, markersize=5, alpha=0.7, label=name)
    axes.plot(grid[:, 0], best.weight[0][0] * grid[:, 0] + best.bias[0], "--", color="gray", label="least squares")
    model_lines = axes.plot(grid[:, 0], np.zeros(len(grid)), "-", color="black", label="model")
    ys = torch.cat([split.y[:, 0] for _, split in named])
    _keep_in_view(axes.set_ylim, float(ys.min()), float(ys.max()))
    axes.set(xlabel="x", ylabel="y")
    return model_lines


def _draw_predicted_against_true(axes, named: list[tuple[str, Split]]) -> list[Line2D]:
    """The diagonal; returns one marker line per split (true on x), to be given the predictions per picture."""
    model_lines = []
    for name, split in named:
        marker = "*" if name == "test" else "o"
        true = split.y[:MAX_POINTS].ravel()
        model_lines += axes.plot(true, np.zeros(len(true)), marker, markersize=4, alpha=0.6, label=name)
    ys = torch.cat([split.y.ravel() for _, split in named])
    low, high = float(ys.min()), float(ys.max())
    axes.plot([low, high], [low, high], "--", color="gray", label="predicted = true")
    _keep_in_view(axes.set_ylim, low, high)
    axes.set(xlabel="true", ylabel="predicted")
    return model_lines


def _keep_in_view(set_limits, low: float, high: float) -> None:
    """Axes framed by the data, so a far-off (or diverged) prediction leaves the frame instead of shrinking it."""
    margin = (high - low) * 0.5 or 1.0
    set_limits(low - margin, high + margin)


def _predict(model: torch.nn.Module, x: torch.Tensor) -> np.ndarray:
    # During fit the model is on the trainer's device (trainer=gpu) and the splits stay on the CPU.
    with torch.no_grad():
        return model(x.to(device=model.device, dtype=model.dtype)).double().cpu().numpy()


def _mse(model: torch.nn.Module, split: Split) -> float:
    return float(np.mean((_predict(model, split.x) - split.y.double().numpy()) ** 2))
