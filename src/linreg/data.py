"""What the regression trains on: LightningDataModules that serve in-memory X/Y tensors.

Three sources share one loader: the notebook's four points (`SeedData`, the default), synthetic data with a
known answer (`SyntheticData`) and a user's CSV file (`CsvData`). Every tensor is float32 and 2-D, Y too:
(N, 1), not (N,), because torchmetrics refuses predictions (N, 1) against targets (N,).

Batches are cut with one index operation per batch (a slice, or one fancy-index when shuffled) instead of
`DataLoader(TensorDataset(...))`'s sample-by-sample indexing and collating, which is several times slower.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

from linreg.config import require_count, require_number
from linreg.errors import InvalidInput
from linreg.tutorial import SEED_TEST_X, SEED_TEST_Y, SEED_X, SEED_Y


@dataclass(frozen=True)
class Split:
    """Inputs (N, in_features) and targets (N, out_features) of one stage."""

    x: Tensor
    y: Tensor

    def __len__(self) -> int:
        return len(self.x)


@dataclass(frozen=True)
class Splits:
    train: Split
    val: Split
    test: Split


class IndexBatches(Sampler):
    """Yields one index object per batch: a slice in order (a view, no copy) or an index tensor when shuffled.

    The shuffled order depends only on (seed, epoch), so every DDP rank draws the same permutation and takes
    its own shard, and a resumed run sees the same batches as an uninterrupted one. Lightning calls
    `set_epoch` at the start of each epoch.
    """

    def __init__(
        self, n: int, batch_size: int, shuffle: bool, seed: int = 0, rank: int = 0, world_size: int = 1
    ) -> None:
        self.n, self.batch_size, self.shuffle, self.seed = n, batch_size, shuffle, seed
        self.rank, self.world_size = rank, world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _shard_size(self) -> int:
        lo, hi = self.rank * self.n // self.world_size, (self.rank + 1) * self.n // self.world_size
        return hi - lo

    def __len__(self) -> int:
        return math.ceil(self._shard_size() / self.batch_size)

    def __iter__(self) -> Iterator[slice | Tensor]:
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            order = torch.randperm(self.n, generator=generator)
            shard = order[self.rank * self.n // self.world_size : (self.rank + 1) * self.n // self.world_size]
            yield from shard.split(self.batch_size)
        else:
            lo, hi = self.rank * self.n // self.world_size, (self.rank + 1) * self.n // self.world_size
            for start in range(lo, hi, self.batch_size):
                yield slice(start, min(start + self.batch_size, hi))


class InMemoryDataset(Dataset):
    """Indexed by a whole batch at once (see `IndexBatches`), not by one sample."""

    def __init__(self, split: Split) -> None:
        self.split = split

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, index: slice | Tensor) -> tuple[Tensor, Tensor]:
        return self.split.x[index], self.split.y[index]


class RegressionDataModule(L.LightningDataModule):
    """Serves train/val/test splits held in memory; subclasses say where the tensors come from.

    `batch_size=None` is the full batch (the notebook's gradient descent); an integer gives shuffled
    mini-batches. Under DDP each rank serves its own equal shard, so `use_distributed_sampler` stays off.
    """

    name = "base"

    def __init__(self, batch_size: int | None = None, shuffle_seed: int = 0) -> None:
        super().__init__()
        self.batch_size = batch_size
        self.shuffle_seed = shuffle_seed
        self.splits: Splits | None = None

    def load(self) -> Splits:
        raise NotImplementedError

    def setup(self, stage: str | None = None) -> None:
        if self.splits is None:
            self.splits = self.load()

    @property
    def n_features(self) -> int:
        self.setup()
        return self.splits.train.x.shape[1]

    @property
    def n_targets(self) -> int:
        self.setup()
        return self.splits.train.y.shape[1]

    def effective_batch_size(self) -> int:
        """The number of training samples per optimizer step (the whole set for the full batch)."""
        self.setup()
        return len(self.splits.train) if self.batch_size is None else self.batch_size

    def _loader(self, split: Split, shuffle: bool) -> DataLoader:
        rank, world_size = (self.trainer.global_rank, self.trainer.world_size) if self.trainer else (0, 1)
        batches = IndexBatches(
            len(split),
            self.batch_size or len(split),
            shuffle=shuffle and self.batch_size is not None,
            seed=self.shuffle_seed,
            rank=rank,
            world_size=world_size,
        )
        return DataLoader(InMemoryDataset(split), batch_size=None, sampler=batches)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.splits.train, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.splits.val, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.splits.test, shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        return self._loader(self.splits.test, shuffle=False)


class SeedData(RegressionDataModule):
    """The notebook's data: X = 1..4, Y = 2X. It has no held-out set, so validation scores the same four
    points (what the notebook's printed loss measures) and the test set is its single query, f(5) = 10."""

    name = "seed"

    def load(self) -> Splits:
        train = Split(torch.tensor(SEED_X), torch.tensor(SEED_Y))
        return Splits(train=train, val=train, test=Split(torch.tensor(SEED_TEST_X), torch.tensor(SEED_TEST_Y)))


class SyntheticData(RegressionDataModule):
    """y = X @ weight + bias + noise * N(0, 1), with X ~ N(0, 1): a problem whose answer is known.

    `weight` defaults to 2.0 for every feature (the notebook's slope). `data_seed` fixes the data
    independently of the training seed, so runs with different seeds see the same samples.
    """

    name = "synthetic"

    def __init__(
        self,
        n_samples: int = 1000,
        n_features: int = 1,
        noise: float = 0.1,
        weight: Sequence[float] | None = None,
        bias: float = 0.0,
        data_seed: int = 0,
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        batch_size: int | None = None,
        shuffle_seed: int = 0,
    ) -> None:
        super().__init__(batch_size=batch_size, shuffle_seed=shuffle_seed)
        require_count("data.n_samples", n_samples, minimum=3)
        require_count("data.n_features", n_features, minimum=1)
        require_number("data.noise", noise, minimum=0.0)
        require_number("data.bias", bias)
        if weight is not None and (len(weight) != n_features):
            raise InvalidInput(
                f"data.weight: {len(weight)} values given, expected {n_features} (one per feature) or null"
            )
        self.n_samples, self.n_dims, self.noise, self.bias = n_samples, n_features, noise, bias
        self.weight = [2.0] * n_features if weight is None else [float(w) for w in weight]
        self.data_seed = data_seed
        self.val_fraction, self.test_fraction = val_fraction, test_fraction

    def load(self) -> Splits:
        generator = torch.Generator().manual_seed(self.data_seed)
        x = torch.randn(self.n_samples, self.n_dims, generator=generator)
        y = x @ torch.tensor(self.weight).unsqueeze(1) + self.bias
        if self.noise:
            y += self.noise * torch.randn(self.n_samples, 1, generator=generator)
        return split_randomly(x, y, self.val_fraction, self.test_fraction, self.data_seed, what="data.n_samples")


class CsvData(RegressionDataModule):
    """A user's CSV file with a header row: `target` names the column to predict (default: the last one),
    `features` the inputs (default: every other column). Every cell must be a finite number."""

    name = "csv"

    def __init__(
        self,
        path: str | None = None,
        target: str | None = None,
        features: Sequence[str] | None = None,
        val_fraction: float = 0.2,
        test_fraction: float = 0.2,
        split_seed: int = 0,
        batch_size: int | None = None,
        shuffle_seed: int = 0,
    ) -> None:
        super().__init__(batch_size=batch_size, shuffle_seed=shuffle_seed)
        if not path:
            raise InvalidInput("data.path: not set; expected the path of a CSV file, e.g. data.path=my.csv")
        self.path = Path(path).expanduser()
        self.target = target
        self.features = list(features) if features is not None else None
        self.val_fraction, self.test_fraction, self.split_seed = val_fraction, test_fraction, split_seed

    def load(self) -> Splits:
        header, table = read_numeric_csv(self.path)
        target = self.target if self.target is not None else header[-1]
        features = self.features if self.features is not None else [c for c in header if c != target]
        for key, column in [("data.target", target), *(("data.features", c) for c in features)]:
            if column not in header:
                raise InvalidInput(f"{key}: no column '{column}' in {self.path}; its columns are {', '.join(header)}")
        if not features:
            raise InvalidInput(f"data.features: no input columns left in {self.path} besides '{target}'")
        x = torch.from_numpy(table[:, [header.index(c) for c in features]]).float()
        y = torch.from_numpy(table[:, [header.index(target)]]).float()
        return split_randomly(
            x, y, self.val_fraction, self.test_fraction, self.split_seed, what=f"data.path: {self.path}"
        )


def read_numeric_csv(path: Path) -> tuple[list[str], np.ndarray]:
    """The header and the float64 table of a CSV file, refusing anything but finite numbers."""
    if not path.is_file():
        raise InvalidInput(f"data.path: no such file '{path}'; expected a CSV file with a header row")
    with path.open(newline="") as file:
        reader = csv.reader(file)
        header = next(reader, None)
        if not header:
            raise InvalidInput(f"data.path: '{path}' is empty; expected a header row, then rows of numbers")
        header = [name.strip() for name in header]
        rows = []
        for row in reader:
            if not row:
                continue
            line = reader.line_num
            if len(row) != len(header):
                raise InvalidInput(
                    f"data.path: '{path}' line {line} has {len(row)} cells, expected {len(header)} like the header"
                )
            try:
                values = [float(cell) for cell in row]
            except ValueError:
                column, cell = next((c, v) for c, v in zip(header, row, strict=True) if not _is_float(v))
                raise InvalidInput(
                    f"data.path: '{path}' line {line}, column '{column}': '{cell}' is not a number"
                ) from None
            bad = next((c for c, v in zip(header, values, strict=True) if not math.isfinite(v)), None)
            if bad is not None:
                raise InvalidInput(
                    f"data.path: '{path}' line {line}, column '{bad}': {row[header.index(bad)].strip()} "
                    f"is not a finite number"
                )
            rows.append(values)
    if not rows:
        raise InvalidInput(f"data.path: '{path}' has a header but no rows of data")
    return header, np.asarray(rows, dtype=np.float64)


def split_randomly(x: Tensor, y: Tensor, val_fraction: float, test_fraction: float, seed: int, what: str) -> Splits:
    """A seeded random train/val/test split; each part gets at least one row (validation two, for R2)."""
    for key, fraction in [("data.val_fraction", val_fraction), ("data.test_fraction", test_fraction)]:
        require_number(key, fraction, minimum=0.0)
        if not 0 < fraction < 1:
            raise InvalidInput(f"{key}: {fraction} is not a fraction; expected a number between 0 and 1")
    if val_fraction + test_fraction >= 1:
        raise InvalidInput(
            f"data.val_fraction + data.test_fraction = {val_fraction + test_fraction:g}; "
            f"expected less than 1, to leave rows for training"
        )
    n = len(x)
    n_val, n_test = max(2, round(n * val_fraction)), max(1, round(n * test_fraction))
    if n - n_val - n_test < 1:
        raise InvalidInput(
            f"{what}: {n} rows are too few to split into train, validation (2 rows at least) and test; "
            f"expected at least {n_val + n_test + 1}"
        )
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    val, test, train = order[:n_val], order[n_val : n_val + n_test], order[n_val + n_test :]
    return Splits(Split(x[train], y[train]), Split(x[val], y[val]), Split(x[test], y[test]))


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
