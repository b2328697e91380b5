"""What the regression trains on: LightningDataModules that serve in-memory X/Y tensors.

Three sources share one loader: the notebook's four points (`SeedData`, the default), synthetic data with a
known answer (`SyntheticData`) and a user's CSV file (`CsvData`). Every tensor is float32 and 2-D, Y too:
(N, 1), not (N,), because torchmetrics refuses predictions (N, 1) against targets (N,).

Batches are cut with one index operation per batch (a slice, or one fancy-index when shuffled) instead of
`DataLoader(TensorDataset(...))`'s sample-by-sample indexing and collating, which is several times slower.
"""

from __future__ import annotations

import csv
import itertools
import math
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

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
        self.epoch_offset = 0  # data epoch minus Lightning's epoch: non-zero after a resume, see resume_at
        self.skip = 0  # batches to leave out of the next epoch only

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def resume_at(self, step: int, trainer_epoch: int) -> None:
        """Go on from optimizer step `step` (one step per batch): skip what its epoch already trained on.

        Lightning counts an epoch cut short by an interruption as completed, so its epoch number can run
        ahead of the data's; the offset keeps each epoch's permutation that of an uninterrupted run.
        """
        data_epoch, self.skip = divmod(step, len(self))
        self.epoch_offset = data_epoch - trainer_epoch

    def _shard_size(self) -> int:
        lo, hi = self.rank * self.n // self.world_size, (self.rank + 1) * self.n // self.world_size
        return hi - lo

    def __len__(self) -> int:
        return math.ceil(self._shard_size() / self.batch_size)

    def __iter__(self) -> Iterator[slice | Tensor]:
        skip, self.skip = self.skip, 0
        return itertools.islice(self._batches(), skip, None)

    def _batches(self) -> Iterator[slice | Tensor]:
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch + self.epoch_offset)
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
        loader = self._loader(self.splits.train, shuffle=True)
        if self.trainer is not None:  # a resumed run goes on with exactly the batches an uninterrupted one would
            loader.sampler.resume_at(self.trainer.global_step, self.trainer.current_epoch)
        return loader

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
        self.path = Path(path or "").expanduser()
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
    """The header and the float64 table of a CSV file, refusing anything but finite numbers.

    numpy's C parser reads the file; only when it refuses the file, or finds a NaN or infinity, does a
    line-by-line scan run to name the line, the column and the cell.
    """
    if not path.is_file():
        raise InvalidInput(f"data.path: no such file '{path}'; expected a CSV file with a header row")
    with path.open(newline="") as file:
        header = next(csv.reader(file), None)
    if not header:
        raise InvalidInput(f"data.path: '{path}' is empty; expected a header row, then rows of numbers")
    header = [name.strip() for name in header]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numpy warns about an empty table; the check below says it better
        try:
            table = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2, dtype=np.float64)
        except ValueError:
            table = None
    if table is not None and table.size == 0:
        raise InvalidInput(f"data.path: '{path}' has a header but no rows of data")
    if table is None or not np.isfinite(table).all() or table.shape[1] != len(header):
        _raise_first_bad_cell(path, header)
    return header, table


def _raise_first_bad_cell(path: Path, header: list[str]) -> None:
    """Scan the file row by row and raise for the first ragged row, non-number or non-finite number."""
    with path.open(newline="") as file:
        reader = csv.reader(file)
        next(reader)
        for row in reader:
            if not row:
                continue
            line = reader.line_num
            if len(row) != len(header):
                raise InvalidInput(
                    f"data.path: '{path}' line {line} has {len(row)} cells, expected {len(header)} like the header"
                )
            for column, cell in zip(header, row, strict=True):
                try:
                    value = float(cell)
                except ValueError:
                    raise InvalidInput(
                        f"data.path: '{path}' line {line}, column '{column}': '{cell}' is not a number"
                    ) from None
                if not math.isfinite(value):
                    raise InvalidInput(
                        f"data.path: '{path}' line {line}, column '{column}': {cell.strip()} is not a finite number"
                    )
    raise InvalidInput(f"data.path: '{path}' is not a CSV table of numbers; expected comma-separated numbers")


def split_randomly(x: Tensor, y: Tensor, val_fraction: float, test_fraction: float, seed: int, what: str) -> Splits:
    """A seeded random train/val/test split; each part gets at least one row (validation two, for R2).

    The fractions are checked by `linreg.config.validate`; here only the number of rows can be wrong.
    """
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
