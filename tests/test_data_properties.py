"""Property-based tests of the data path: any valid table is served whole, any invalid one is refused."""

import math
import re

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from linreg.data import IndexBatches, RegressionDataModule
from linreg.errors import InvalidInput
from linreg.sources import CsvData

FINITE = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, width=32)
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _write_csv(path, table):
    header = ",".join(f"c{i}" for i in range(table.shape[1]))
    path.write_text(header + "\n" + "\n".join(",".join(repr(float(v)) for v in row) for row in table) + "\n")


SHAPES = st.tuples(st.integers(5, 60), st.integers(2, 5))  # rows, columns (the last is the target)


@SETTINGS
@given(
    table=SHAPES.flatmap(lambda shape: arrays(np.float32, shape, elements=FINITE)),
    batch_size=st.one_of(st.none(), st.integers(1, 70)),
    seed=st.integers(0, 2**32 - 1),
)
def test_valid_tables_are_served_whole_every_epoch(tmp_path, table, batch_size, seed):
    path = tmp_path / "table.csv"
    _write_csv(path, table)
    datamodule = RegressionDataModule(CsvData(path=str(path)), batch_size=batch_size, shuffle_seed=seed)
    train_rows = len(CsvData(path=str(path)).load().train)
    if batch_size is not None and batch_size > train_rows:  # a batch larger than the data is refused
        with pytest.raises(InvalidInput, match=f"data.batch_size: {batch_size} is larger than the {train_rows} train"):
            _ = datamodule.splits
        return
    splits = datamodule.splits
    assert len(splits.train) + len(splits.val) + len(splits.test) == len(table)
    served = torch.cat([torch.cat([part.x, part.y], dim=1) for part in (splits.train, splits.val, splits.test)])
    rows = sorted(map(tuple, served.tolist()))
    assert rows == sorted(map(tuple, torch.from_numpy(table).tolist()))  # every row once, values exact

    loader = datamodule.train_dataloader()
    for epoch in range(2):
        loader.sampler.position = lambda epoch=epoch: epoch * len(loader)  # the trainer's step at each epoch
        batches = list(loader)
        assert len(batches) == len(loader)
        xs = torch.cat([x for x, _ in batches])
        assert all(len(x) <= (batch_size or len(splits.train)) for x, _ in batches)
        assert sorted(map(tuple, xs.tolist())) == sorted(map(tuple, splits.train.x.tolist()))


@SETTINGS
@given(
    shape=st.integers(1, 40).flatmap(lambda n: st.tuples(st.just(n), st.integers(1, n))),
    seed=st.integers(0, 2**32 - 1),
    stop=st.integers(0, 30),
    prefetch=st.booleans(),
)
def test_the_stream_resumed_at_any_step_is_one_order_per_epoch_drawn_on_the_cpu(shape, seed, stop, prefetch):
    """Whatever the step a run resumes at, and whether the next epoch's order is drawn ahead (on an accelerator)
    or in turn, one sampler serves epoch after epoch the CPU generator's order for (seed, epoch), cut in batches."""
    rows, batch_size = shape
    per_epoch = math.ceil(rows / batch_size)
    step = stop
    sampler = IndexBatches(rows, batch_size, shuffle=True, seed=seed, position=lambda: step, prefetch=prefetch)
    served = []
    for _ in range(3):
        batches = [batch.tolist() for batch in sampler]
        served += batches
        step += len(batches)
    epochs = range(stop // per_epoch, step // per_epoch)
    orders = [torch.randperm(rows, generator=torch.Generator().manual_seed(seed * 1_000_003 + e)) for e in epochs]
    expected = [piece.tolist() for order in orders for piece in order.split(batch_size)]
    assert served == expected[stop % per_epoch :]


@SETTINGS
@given(
    table=arrays(np.float64, (8, 3), elements=st.floats(-100, 100, allow_nan=False)),
    row=st.integers(0, 7),
    column=st.integers(0, 2),
    bad=st.sampled_from([math.nan, math.inf, -math.inf, "x", "", "1.2.3"]),
)
def test_invalid_cells_are_refused_with_line_and_column(tmp_path, table, row, column, bad):
    lines = ["a,b,c", *(",".join(repr(float(v)) for v in values) for values in table)]
    cells = lines[row + 1].split(",")
    cells[column] = str(bad)
    lines[row + 1] = ",".join(cells)
    _refused(tmp_path, lines, f"line {row + 2}, column '{'abc'[column]}'")


@SETTINGS
@given(rows=st.integers(1, 6), missing=st.integers(1, 2))
def test_ragged_rows_are_refused(tmp_path, rows, missing):
    lines = ["a,b,c"] + ["1,2,3"] * rows + [",".join(["1"] * (3 - missing))]
    _refused(tmp_path, lines, f"line {rows + 2} has {3 - missing} cells, expected 3")


def _refused(folder, lines, message):
    path = folder / "bad.csv"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InvalidInput, match=re.escape(message)):
        CsvData(path=str(path)).load()
