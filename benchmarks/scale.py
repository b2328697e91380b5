"""Target 3: `data=synthetic` with 2,000,000 samples x 32 features, one epoch.

- batch 4096: at least 10x the samples per second of the naive `DataLoader(TensorDataset(...))` loop;
- batch 65536: at least 0.5x a raw loop that slices the same in-memory tensors;
- peak memory at most twice the data's bytes + 600 MiB;
- on a CUDA GPU (`trainer=gpu`; skipped, with the reason, where there is none): batch 65536 at least 0.5x a
  plain CUDA loop over the same tensors already in the GPU's memory, batch 4096 shown. A GPU epoch is short
  (about 20 ms at batch 65536 on an H200), so both sides run several: the run's fixed cost is then not the row.
"""

from __future__ import annotations

import functools
import logging
import math
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch
from measure import REPO, Row, alternate, compose, peak_rss_mib, train_command
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from linreg.sources import SyntheticData
from linreg.train import train

FEATURES = 32


def _step(model: nn.Linear, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor) -> None:
    loss = nn.functional.mse_loss(model(x), y)
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()


def naive_samples_per_s(x: torch.Tensor, y: torch.Tensor, batch_size: int, max_batches: int) -> float:
    """The usual loop: DataLoader(TensorDataset) indexes and collates sample by sample."""
    model = nn.Linear(x.shape[1], 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    loader = DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=True)
    seen, started = 0, time.perf_counter()
    for index, (xb, yb) in enumerate(loader):
        if index == max_batches:
            break
        _step(model, optimizer, xb, yb)
        seen += len(xb)
    return seen / (time.perf_counter() - started)


def sliced_samples_per_s(x: torch.Tensor, y: torch.Tensor, batch_size: int) -> float:
    """The fastest plain loop: views of the in-memory tensors, in order, no shuffling."""
    model = nn.Linear(x.shape[1], 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    started = time.perf_counter()
    for start in range(0, len(x), batch_size):
        _step(model, optimizer, x[start : start + batch_size], y[start : start + batch_size])
    return len(x) / (time.perf_counter() - started)


def cuda_samples_per_s(x: torch.Tensor, y: torch.Tensor, batch_size: int, epochs: int) -> float:
    """The plain CUDA loop: the tensors already on the GPU, views in order, `epochs` times, timed until the
    GPU has finished (its kernels run behind the Python loop)."""
    model = nn.Linear(x.shape[1], 1).cuda()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(epochs):
        for start in range(0, len(x), batch_size):
            _step(model, optimizer, x[start : start + batch_size], y[start : start + batch_size])
    torch.cuda.synchronize()
    return epochs * len(x) / (time.perf_counter() - started)


def project_samples_per_s(n_samples: int, batch_size: int, tmp: Path, *extra: str, epochs: int = 1) -> float:
    """`epochs` epochs of `python scripts/train.py data=synthetic ...` (in-process: start-up is target 1's, and so
    are the fit pictures, a cost per run)."""
    n_train = n_samples - round(0.1 * n_samples) * 2
    steps = math.ceil(n_train / batch_size) * epochs
    overrides = [
        "data=synthetic", f"data.source.n_samples={n_samples}", f"data.source.n_features={FEATURES}",
        f"data.batch_size={batch_size}", f"iters={steps}", "lr=0.01", "~callbacks.progress",
        f"trainer.val_check_interval={steps + 1}", "~callbacks.fit_pictures", *extra,
    ]  # fmt: skip  # the pictures cost per run, not per sample: their own row is target 1's
    record = train(compose(*overrides), tmp / f"b{batch_size}")
    return epochs * n_train / record["fit_s"]


def gpu_rows(n_samples: int, x: torch.Tensor, y: torch.Tensor, repeats: int, tmp: Path) -> list[Row]:
    """`trainer=gpu` against the plain CUDA loop, each at its own number of epochs (a few seconds on an H200)."""
    if not torch.cuda.is_available():
        print(f"scale: the GPU rows are skipped: torch {torch.__version__} sees no CUDA GPU here")
        return []
    x, y = x.cuda(), y.cuda()
    epochs = {4096: 2, 65536: 20}
    for batch_size, times in epochs.items():  # warm-up: CUDA's start, its kernels' first loads, the allocator
        project_samples_per_s(n_samples, batch_size, tmp, "trainer=gpu", epochs=1)
        cuda_samples_per_s(x, y, batch_size, times)
    device = torch.cuda.get_device_name()
    cases = [  # (batch size, extra overrides, the row's name, its target, what the row compares)
        (4096, (), "GPU: samples/s at batch 4096", "-", "the project shuffles: one gather on the GPU a batch"),
        (65536, (), "GPU: samples/s at batch 65536", ">= 0.5", "the project shuffles: one gather on the GPU a batch"),
        (65536, ("data.shuffle=false",), "GPU: the same in order", "-", "both in order: Lightning's per-step cost"),
    ]
    rows = []
    for batch_size, extra, name, target, compared in cases:
        times = epochs[batch_size]
        project, plain = alternate(
            functools.partial(project_samples_per_s, n_samples, batch_size, tmp, "trainer=gpu", *extra, epochs=times),
            functools.partial(cuda_samples_per_s, x, y, batch_size, times),
            repeats,
        )
        note = f"{device}, {n_samples:,} x {FEATURES}, {times} epochs, against a plain CUDA loop over the same tensors"
        rows.append(Row(name, project, plain, "samples/s", target, note=f"{note} in its memory; {compared}"))
    return rows


def run(quick: bool) -> list[Row]:
    n_samples, repeats, naive_batches = (200_000, 1, 10) if quick else (2_000_000, 3, 40)
    torch.set_num_threads(1)
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore")
    splits = SyntheticData(n_samples=n_samples, n_features=FEATURES).load()
    x, y = splits.train.x, splits.train.y
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for batch_size in (4096, 65536):  # warm-up: first-use allocations of each batch shape, on both sides
            project_samples_per_s(n_samples, batch_size, Path(tmp))
            sliced_samples_per_s(x, y, batch_size)
        project, naive = alternate(
            lambda: project_samples_per_s(n_samples, 4096, Path(tmp)),
            lambda: naive_samples_per_s(x, y, 4096, naive_batches),
            repeats,
        )
        rows.append(Row(f"samples/s at batch 4096, {n_samples:,} x {FEATURES}", project, naive, "samples/s", ">= 10"))
        project, sliced = alternate(
            lambda: project_samples_per_s(n_samples, 65536, Path(tmp)),
            lambda: sliced_samples_per_s(x, y, 65536),
            repeats,
        )
        rows.append(
            Row(
                f"samples/s at batch 65536, {n_samples:,} x {FEATURES}",
                project,
                sliced,
                "samples/s",
                ">= 0.5",
                note="the baseline slices views in order; the project shuffles: one row gather per batch",
            )
        )
        project, sliced = alternate(
            lambda: project_samples_per_s(n_samples, 65536, Path(tmp), "data.shuffle=false"),
            lambda: sliced_samples_per_s(x, y, 65536),
            repeats,
        )
        rows.append(
            Row(
                "the same with data.shuffle=false (in order)",
                project,
                sliced,
                "samples/s",
                ">= 0.5",
                note="both serve views in order: what is left is Lightning's per-step cost",
            )
        )
        rows += gpu_rows(n_samples, x, y, repeats, Path(tmp))
        steps = math.ceil(n_samples * 0.8 / 65536)
        command = train_command(
            "data=synthetic", f"data.source.n_samples={n_samples}", f"data.source.n_features={FEATURES}",
            "data.batch_size=65536", f"iters={steps}", f"hydra.run.dir={tmp}/memory",
        )  # fmt: skip
        peak = peak_rss_mib(command, REPO)
    data_mib = n_samples * (FEATURES + 1) * 4 / 2**20
    rows.append(
        Row(
            "peak memory vs 2 x data + 600 MiB",
            peak,
            2 * data_mib + 600,
            "MiB",
            "<= 1",
            note=f"the data is {data_mib:.0f} MiB of float32",
        )
    )
    return rows


if __name__ == "__main__":
    from measure import print_table

    print_table(run(quick="--quick" in sys.argv))
