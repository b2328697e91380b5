"""Where the regression's X/Y tensors come from: the notebook's four points, synthetic data, a CSV file.

A source is the `source` component of the `data` config group (`conf/data/`): each class checks its own keys
when it is built, and so does a CSV file (its form, header, cells, columns, and rows enough to split); `load()`
returns train/val/test `Splits` held in memory. Building needs numpy at most, never torch: `linreg.config.check`
builds a source of this module before torch's import (about 2 s), so that bad data is answered at once, and
torch is imported by `load()`, which makes the tensors. Every tensor is 2-D, Y too: (N, 1), not (N,), because
torchmetrics refuses predictions (N, 1) against targets (N,); float32, except a CSV file's, which keep the
float64 they were parsed in (the DataModule serves float32 unless the run trains in float64).
"""

from __future__ import annotations

import contextlib
import csv
import functools
import hashlib
import math
import stat
import warnings
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from linreg.checks import FLOAT32_MAX, require_count, require_float32, require_number
from linreg.errors import InvalidInput
from linreg.hardware import BYTES_PER_VALUE, require_memory

if TYPE_CHECKING:
    from torch import Tensor

# The notebook's data: f(x) = 2x on four points, and the input it predicts, x = 5 (target 10); `SeedData`
# serves them, and the tutorial's cells (`linreg.tutorial`) train on them.
SEED_X = [[1.0], [2.0], [3.0], [4.0]]
SEED_Y = [[2.0], [4.0], [6.0], [8.0]]
SEED_TEST_X = [[5.0]]
SEED_TEST_Y = [[10.0]]


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


class Source(Protocol):
    """Where a run's data comes from; `name` is what results.json and the HPARAMS tab call it."""

    name: str

    def load(self) -> Splits: ...


def require_fractions(val_fraction: float, test_fraction: float) -> None:
    """Validation and test fractions that leave rows for training; 0 gives that split no rows at all."""
    for key, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        require_number(f"data.source.{key}", value)
        if not 0 <= value < 1:
            raise InvalidInput(
                f"data.source.{key}: {value} is not allowed; expected a number from 0 (no such split) to below 1"
            )
    if val_fraction + test_fraction >= 1:
        raise InvalidInput(
            f"data.source.val_fraction + data.source.test_fraction = {val_fraction + test_fraction:g}; "
            "expected less than 1, to leave rows for training"
        )


class SeedData:
    """The notebook's data: X = 1..4, Y = 2X. It has no held-out set, so validation scores the same four
    points (what the notebook's printed loss measures) and the test set is its single query, f(5) = 10."""

    name = "seed"

    def load(self) -> Splits:
        import torch

        train = Split(torch.tensor(SEED_X), torch.tensor(SEED_Y))
        return Splits(train=train, val=train, test=Split(torch.tensor(SEED_TEST_X), torch.tensor(SEED_TEST_Y)))


class SyntheticData:
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
    ) -> None:
        require_count("data.source.n_samples", n_samples, minimum=4)
        require_count("data.source.n_features", n_features, minimum=1)
        require_number("data.source.noise", noise, minimum=0.0)
        require_number("data.source.bias", bias)
        for key, value in (("data.source.noise", noise), ("data.source.bias", bias)):
            require_float32(key, value)
        require_count("data.source.data_seed", data_seed, minimum=0, maximum=2**63 - 1)
        if weight is not None and (isinstance(weight, str) or len(weight) != n_features):
            raise InvalidInput(
                f"data.source.weight: {weight!r} is not allowed; expected {n_features} numbers (one per feature) "
                "or null"
            )
        for value in weight or ():
            require_number("data.source.weight", value)
            require_float32("data.source.weight", value)
        require_fractions(val_fraction, test_fraction)
        require_memory("data.source.n_samples", n_samples * (n_features + 1) * BYTES_PER_VALUE)
        self.sizes = split_sizes(n_samples, val_fraction, test_fraction, what="data.source.n_samples")
        self.n_samples, self.n_dims, self.noise, self.bias = n_samples, n_features, noise, bias
        self.weight = [2.0] * n_features if weight is None else [float(w) for w in weight]
        self.data_seed = data_seed

    def load(self) -> Splits:
        import torch

        generator = torch.Generator().manual_seed(self.data_seed)
        x = torch.randn(self.n_samples, self.n_dims, generator=generator)
        y = x @ torch.tensor(self.weight).unsqueeze(1) + self.bias
        if self.noise:
            y += self.noise * torch.randn(self.n_samples, 1, generator=generator)
        return split_randomly(x, y, self.sizes, self.data_seed)


class CsvData:
    """A user's CSV file with a header row: `target` names the column to predict (default: the last one),
    `features` the inputs (default: every other column). Every cell must be a finite number.

    The file is read and checked when the source is built; `load()` makes the tensors from that reading.
    """

    name = "csv"

    def __init__(
        self,
        path: str | None = None,
        target: str | None = None,
        features: Sequence[str] | None = None,
        val_fraction: float = 0.2,
        test_fraction: float = 0.2,
        split_seed: int = 0,
    ) -> None:
        if not path:
            raise InvalidInput(
                "data.source.path: not set; expected the path of a CSV file, e.g. data.source.path=my.csv"
            )
        if features is not None and (isinstance(features, str) or not all(isinstance(c, str) for c in features)):
            raise InvalidInput(f"data.source.features: {features!r} is not allowed; expected a list of column names")
        require_fractions(val_fraction, test_fraction)
        require_count("data.source.split_seed", split_seed, minimum=0, maximum=2**63 - 1)
        self.path = Path(path).expanduser()
        require_csv_file(self.path)
        # Parsing holds the text's numbers as float64 next to the float32 tensors; a number takes at least
        # two characters ("1,"), so the file's size bounds what the numbers need.
        require_memory("data.source.path", self.path.stat().st_size // 2 * BYTES_PER_VALUE)
        header, self.table = read_numeric_csv(self.path)
        self.target = target if target is not None else header[-1]
        self.features = list(features) if features is not None else [c for c in header if c != self.target]
        self.feature_columns, self.target_column = _column_positions(header, self.target, self.features, self.path)
        self.sizes = split_sizes(len(self.table), val_fraction, test_fraction, what=f"data.source.path: {self.path}")
        self.split_seed = split_seed

    def load(self) -> Splits:
        import torch

        x = torch.from_numpy(self.table[:, self.feature_columns])  # a new array each (indexing by a list copies)
        y = torch.from_numpy(self.table[:, [self.target_column]])
        return split_randomly(x, y, self.sizes, self.split_seed)


def _column_positions(header: Sequence[str], target: str, features: list[str], path: Path) -> tuple[list[int], int]:
    """The features' columns and the target's in the file: each must exist, and the target be no feature."""
    position = {name: index for index, name in enumerate(header)}  # a dict: a header of 100,000 names is fast
    for key, column in [("data.source.target", target), *(("data.source.features", c) for c in features)]:
        if column not in position:
            columns = ", ".join(_shortened(c) for c in header)
            raise InvalidInput(f"{key}: no column '{_shortened(column)}' in {path}; its columns are {columns}")
    if not features:
        raise InvalidInput(f"data.source.features: no input columns left in {path} besides '{target}'")
    if target in features:  # the model would be handed the answer as an input
        raise InvalidInput(
            f"data.source.features: {features!r} holds the target '{target}'; expected input columns other than "
            "data.source.target"
        )
    return [position[c] for c in features], position[target]


def read_numeric_csv(path: Path) -> tuple[tuple[str, ...], np.ndarray]:
    """The header and the float64 table (read-only) of a CSV file, refusing anything but finite numbers.

    numpy's C parser reads the file; only when it refuses the file, or finds a NaN or infinity, does a
    line-by-line scan run to name the line, the column and the cell. A run builds its source twice, once to
    check it before torch's import and once to train on it: the same bytes are parsed once (hashing them takes
    about a tenth of the parsing).
    """
    require_csv_file(path)
    with path.open("rb") as file:
        digest = hashlib.file_digest(file, "sha256").hexdigest()
    return _read_bytes_once(path, digest)


@functools.lru_cache(maxsize=1)  # by the bytes' digest, not the file's time: a rewrite within a clock tick is seen
def _read_bytes_once(path: Path, digest: str) -> tuple[tuple[str, ...], np.ndarray]:
    try:
        header, table = _read_table(path)
    except UnicodeDecodeError as error:  # a spreadsheet saved in another encoding, or not a text file at all
        raise InvalidInput(
            f"data.source.path: '{path}' is not UTF-8 text (it holds the byte {error.object[error.start]:#04x}); "
            "expected a CSV text file saved as UTF-8"
        ) from None
    table.setflags(write=False)  # shared by every reading of the file
    return tuple(header), table


@contextlib.contextmanager
def _cells_up_to(size: int) -> Iterator[None]:
    """The csv module refuses a cell over 128 KiB (`_csv.Error`); a cell no longer than the file is allowed here,
    so that such a cell is judged (not a number, not finite) like any other."""
    limit = csv.field_size_limit()
    csv.field_size_limit(max(limit, size))
    try:
        yield
    finally:
        csv.field_size_limit(limit)


def _shortened(text: str, limit: int = 40) -> str:
    """A cell or a column name as a message quotes it: a 140 000-character cell would drown the line."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def _read_table(path: Path) -> tuple[list[str], np.ndarray]:
    with path.open(newline="", encoding="utf-8-sig") as file, _cells_up_to(path.stat().st_size):
        header = next(csv.reader(file), None)  # -sig: a spreadsheet's byte-order mark is no name
    if not header:
        raise InvalidInput(f"data.source.path: '{path}' is empty; expected a header row, then rows of numbers")
    header = [name.strip() for name in header]
    if "" in header:
        raise InvalidInput(
            f"data.source.path: '{path}' has no name for column {header.index('') + 1} of its header row; "
            "expected a name for every column"
        )
    repeated = sorted(name for name, count in Counter(header).items() if count > 1)
    if repeated:
        names = ", ".join(repr(_shortened(name)) for name in repeated[:5])
        more = f" and {len(repeated) - 5} more" if len(repeated) > 5 else ""
        raise InvalidInput(
            f"data.source.path: '{path}' has the column name(s) {names}{more} more than once; "
            "expected one name per column"
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numpy warns about an empty table; the check below says it better
        try:  # quotechar: spreadsheets may quote every cell ("1.5"), as the csv module reads them
            # comments=None: a row starting with '#' is a bad row, not silently dropped as numpy's comment
            table = np.loadtxt(path, delimiter=",", quotechar='"', skiprows=1, ndmin=2, dtype=np.float64, comments=None)
        except ValueError:
            table = None
    if table is not None and table.size == 0:
        raise InvalidInput(f"data.source.path: '{path}' has a header but no rows of data")
    if table is None or table.shape[1] != len(header) or not (np.abs(table) <= FLOAT32_MAX).all():  # NaN too
        _raise_first_bad_cell(path, header)
    return header, table


def _raise_first_bad_cell(path: Path, header: list[str]) -> None:
    """Scan the file row by row and raise for the first ragged row, non-number or non-finite number."""
    where = f"data.source.path: '{path}'"
    with path.open(newline="", encoding="utf-8-sig") as file, _cells_up_to(path.stat().st_size):
        reader = csv.reader(file)
        next(reader)
        for row in reader:
            if not row:
                continue
            line = reader.line_num
            if len(row) != len(header):
                raise InvalidInput(f"{where} line {line} has {len(row)} cells, expected {len(header)} like the header")
            for column, cell in zip(header, row, strict=True):
                try:
                    value = float(cell)
                except ValueError:
                    comment = " (a row starting with # is no comment here)" if cell.lstrip().startswith("#") else ""
                    raise InvalidInput(
                        f"{where} line {line}, column '{_shortened(column)}': '{_shortened(cell)}' is not a number"
                        + comment
                    ) from None
                if not math.isfinite(value):
                    raise InvalidInput(
                        f"{where} line {line}, column '{_shortened(column)}': {_shortened(cell.strip())} is not a "
                        "finite number"
                    )
                if abs(value) > FLOAT32_MAX:
                    raise InvalidInput(
                        f"{where} line {line}, column '{_shortened(column)}': {_shortened(cell.strip())} is beyond "
                        f"float32's range; expected numbers of magnitude below {FLOAT32_MAX:.3g}, or rescaled data"
                    )
    raise InvalidInput(f"{where} is not a CSV table of numbers; expected comma-separated numbers")


def split_sizes(n: int, val_fraction: float, test_fraction: float, what: str) -> tuple[int, int]:
    """The validation and test rows of `n`: each part asked for gets at least one row (validation two, for
    R2), and a fraction of 0 gets none; `n` is refused when no row is left for training (`what` names it).

    The fractions are checked by `require_fractions`; here only the number of rows can be wrong.
    """
    n_val = max(2, round(n * val_fraction)) if val_fraction else 0
    n_test = max(1, round(n * test_fraction)) if test_fraction else 0
    if n - n_val - n_test < 1:
        parts = ["train", *(["validation (2 rows at least)"] if n_val else []), *(["test"] if n_test else [])]
        named = " and ".join([", ".join(parts[:-1]), parts[-1]])
        raise InvalidInput(
            f"{what}: {n} rows are too few to split into {named}; expected at least {n_val + n_test + 1}"
        )
    return n_val, n_test


def split_randomly(x: Tensor, y: Tensor, sizes: tuple[int, int], seed: int) -> Splits:
    """A seeded random train/val/test split, with the validation and test rows of `split_sizes`: all other
    rows go to training."""
    import torch

    n_val, n_test = sizes
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    val, test, train = order[:n_val], order[n_val : n_val + n_test], order[n_val + n_test :]
    parts = [Split(x.index_select(0, rows), y.index_select(0, rows)) for rows in (train, val, test)]
    return Splits(*parts)


def require_csv_file(path: Path) -> None:
    """The one message for a missing CSV file, from the constructor and from the reader alike."""
    expected = "expected a CSV file with a header row"
    if path.is_dir():
        raise InvalidInput(f"data.source.path: '{path}' is a folder; {expected}")
    if path.exists() and not stat.S_ISREG(path.stat().st_mode):  # a FIFO or a device would block or never end
        raise InvalidInput(f"data.source.path: '{path}' is not a regular file (a pipe or a device?); {expected}")
    if not path.is_file():
        raise InvalidInput(f"data.source.path: no such file '{path}'; {expected}")
