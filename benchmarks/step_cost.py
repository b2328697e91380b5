"""Target 2: cost per optimizer step in steady state on the seed data, loss logging on at the default
interval, against the raw PyTorch loop: at most 5x. Both are measured as the slope between a short and a
long run, so start-up, the final validation and the checkpoint cancel out."""

from __future__ import annotations

import functools
import logging
import sys
import tempfile
import time
import warnings
from pathlib import Path

import lightning as L
import torch
from measure import Row, alternate, compose
from torch import nn

from linreg.data import RegressionDataModule
from linreg.models import LinearRegression
from linreg.sources import SeedData
from linreg.train import train


def project_fit_seconds(iters: int, tmp: Path, *overrides: str) -> float:
    record = train(compose(f"iters={iters}", "~callbacks.progress", *overrides), tmp / f"run{iters}")
    return record["fit_s"]


def stripped_fit_seconds(iters: int) -> float:
    """Lightning with no logger, callbacks or validation: the framework's own floor."""
    datamodule = RegressionDataModule(SeedData())
    trainer = L.Trainer(
        accelerator="cpu", max_steps=iters, max_epochs=-1, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
    )  # fmt: skip
    started = time.perf_counter()
    trainer.fit(LinearRegression(optimizer=functools.partial(torch.optim.SGD, lr=0.001)), datamodule=datamodule)
    return time.perf_counter() - started


def raw_fit_seconds(iters: int) -> float:
    x, y = SeedData().load().train.x, SeedData().load().train.y
    model, loss_fn = nn.Linear(1, 1), nn.MSELoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.001)
    started = time.perf_counter()
    for _ in range(iters):
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return time.perf_counter() - started


def per_step_ms(fit_seconds, short: int, long: int) -> float:
    return 1000 * (fit_seconds(long) - fit_seconds(short)) / (long - short)


def run(quick: bool) -> list[Row]:
    short, long, repeats = (100, 600, 1) if quick else (200, 2200, 5)
    torch.set_num_threads(1)  # as the project's runs (threads: 1)
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore")
    with tempfile.TemporaryDirectory() as tmp:
        project, raw = alternate(
            lambda: per_step_ms(lambda n: project_fit_seconds(n, Path(tmp)), short, long),
            lambda: per_step_ms(raw_fit_seconds, short, long),
            repeats,
        )
        stripped, raw_again = alternate(
            lambda: per_step_ms(stripped_fit_seconds, short, long),
            lambda: per_step_ms(raw_fit_seconds, short, long),
            repeats,
        )
    return [
        Row("cost per step, seed data, logging on", project, raw, "ms/step", "<= 5"),
        Row(
            "cost per step, Lightning stripped",
            stripped,
            raw_again,
            "ms/step",
            "-",
            note="no logger, callbacks or validation: what Lightning's loop alone costs over the raw loop",
        ),
    ]


if __name__ == "__main__":
    from measure import print_table

    print_table(run(quick="--quick" in sys.argv))
