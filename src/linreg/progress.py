"""A progress bar over optimizer steps, the unit `iters` counts.

Lightning's bar counts batches within epochs, which are passes over the data with mini-batches and the
whole run on the notebook's full batch (`linreg.data`): neither is the count `iters` sets.
"""

from __future__ import annotations

import sys

import lightning as L
from torch import Tensor
from tqdm import tqdm


class StepProgressBar(L.Callback):
    """One bar from 0 to `iters` with the latest training loss, refreshed every `refresh_every` steps."""

    def __init__(self, refresh_every: int = 10) -> None:
        self.refresh_every = refresh_every
        self.bar: tqdm | None = None

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.is_global_zero:
            # disable=None: no bar when stderr is not a terminal (CI logs, SLURM files, parallel jobs)
            self.bar = tqdm(
                total=trainer.max_steps,
                initial=trainer.global_step,
                desc="train",
                unit="step",
                file=sys.stderr,
                disable=None,
            )

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: dict[str, Tensor], batch, batch_idx
    ) -> None:
        step = trainer.global_step
        if self.bar is not None and (step % self.refresh_every == 0 or step == trainer.max_steps):
            self.bar.set_postfix(loss=f"{outputs['loss'].item():.6g}", refresh=False)
            self.bar.update(step - self.bar.n)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.bar is not None:
            self.bar.update(trainer.global_step - self.bar.n)
            self.bar.close()
            self.bar = None
