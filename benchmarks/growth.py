"""Target 5: time against iters (100 to 100,000, seed data) and against samples (10^4 to 10^7, one epoch at
batch 65536) grows linearly; the fit states the fixed cost. Writes docs/growth.png for docs/performance.md."""

from __future__ import annotations

import logging
import math
import sys
import tempfile
import warnings
from pathlib import Path

import torch
from measure import REPO, compose, linear_fit

from linreg.train import train

FEATURES = 8


def seconds_for_iters(iters: int, tmp: Path) -> float:
    record = train(compose(f"iters={iters}", "~callbacks.progress"), tmp / f"iters{iters}")
    return record["wall_s"]


def seconds_for_samples(n_samples: int, tmp: Path) -> float:
    train_rows = n_samples - 2 * round(0.1 * n_samples)
    batch_size = min(65536, train_rows)  # a batch larger than the data is refused
    steps = math.ceil(train_rows / batch_size)
    overrides = [
        "data=synthetic", f"data.source.n_samples={n_samples}", f"data.source.n_features={FEATURES}",
        f"data.batch_size={batch_size}", f"iters={steps}", "~callbacks.progress",
        f"trainer.val_check_interval={steps + 1}",
    ]  # fmt: skip
    return train(compose(*overrides), tmp / f"samples{n_samples}")["wall_s"]


def run(quick: bool) -> dict:
    iters = [100, 1000, 3000] if quick else [100, 1000, 10_000, 100_000]
    samples = [10_000, 100_000] if quick else [10_000, 100_000, 1_000_000, 10_000_000]
    torch.set_num_threads(1)
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore")
    with tempfile.TemporaryDirectory() as tmp:
        by_iters = [seconds_for_iters(n, Path(tmp)) for n in iters]
        by_samples = [seconds_for_samples(n, Path(tmp)) for n in samples]
    growth = {
        "iters": {"x": iters, "seconds": by_iters, **linear_fit(iters, by_iters)},
        "samples": {"x": samples, "seconds": by_samples, **linear_fit(samples, by_samples)},
    }
    if not quick:
        plot(growth, REPO / "docs" / "growth.png")
    return growth


def plot(growth: dict, path: Path) -> None:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(9, 3.8), layout="constrained")
    panels = [("iters", "iters (optimizer steps)"), ("samples", "samples")]
    for axes, (key, label) in zip(figure.subplots(1, 2), panels, strict=True):
        data = growth[key]
        axes.plot(data["x"], data["seconds"], "o", label="measured")
        low, high = min(data["x"]), max(data["x"])
        xs = [low * (high / low) ** (i / 49) for i in range(50)]  # a line a + b*x bends on log axes: draw it
        axes.plot(xs, [data["fixed"] + data["per_unit"] * x for x in xs], "-", label="fixed + per unit * x")
        axes.set(xscale="log", yscale="log", xlabel=label, ylabel="run time (s)")
        axes.set_title(f"fixed {data['fixed']:.2f} s, R² {data['r2']:.4f}", fontsize=10)
        axes.grid(True, which="both", alpha=0.3)
        axes.legend()
    figure.savefig(path, dpi=100)


def describe(growth: dict) -> list[str]:
    return [
        f"time vs {key}: {data['per_unit'] * 1000:.4g} ms per {key[:-1] if key == 'iters' else 'sample'}, "
        f"fixed {data['fixed']:.2f} s, R^2 {data['r2']:.4f} over {data['x']}"
        for key, data in growth.items()
    ]


if __name__ == "__main__":
    print("\n".join(describe(run(quick="--quick" in sys.argv))))
