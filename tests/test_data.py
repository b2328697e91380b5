"""The data: sources and their splits, the DataModule's batches, and CSV files refused with the reason."""

import math

import pytest
import torch

from linreg.data import IndexBatches, RegressionDataModule
from linreg.errors import InvalidInput
from linreg.sources import CsvData, SeedData, SyntheticData


def test_seed_data_is_the_notebooks():
    splits = SeedData().load()
    assert splits.train.x.tolist() == [[1.0], [2.0], [3.0], [4.0]]
    assert splits.train.y.tolist() == [[2.0], [4.0], [6.0], [8.0]]
    assert splits.test.x.tolist() == [[5.0]] and splits.test.y.tolist() == [[10.0]]
    (batch,) = list(RegressionDataModule(SeedData()).train_dataloader())
    assert [t.shape for t in batch] == [(4, 1), (4, 1)]  # Y stays (N, 1) for torchmetrics


def _sampler(n, batch_size, seed, step=0, **shard):
    """A shuffled sampler whose trainer has taken `step` optimizer steps."""
    return IndexBatches(n, batch_size, shuffle=True, seed=seed, position=lambda: step, **shard)


@pytest.mark.parametrize(("n", "batch_size"), [(10, 3), (7, 7), (5, 100), (1, 1)])
def test_shuffled_batches_cover_every_sample_once_per_epoch(n, batch_size):
    orders = []
    for epoch in range(3):
        sampler = _sampler(n, batch_size, seed=1, step=epoch * math.ceil(n / batch_size))
        batches = list(sampler)
        assert len(batches) == len(sampler)
        assert all(len(b) <= batch_size for b in batches)
        orders.append(torch.cat(batches).tolist())
        assert sorted(orders[-1]) == list(range(n))
    if n >= 5:
        assert orders[0] != orders[1]  # reshuffled each epoch


@pytest.mark.parametrize("stop", [0, 5, 7, 8, 14, 21])
def test_the_batches_go_on_from_the_step_reached_whatever_lightnings_epoch(stop):
    """20 samples in batches of 3: 7 a epoch. The stream from `stop` on is the uninterrupted stream's tail,
    an epoch boundary (7, 14, 21) or not; Lightning may end an epoch early, the next iteration goes on."""
    stream = [b.tolist() for epoch in range(5) for b in _sampler(20, 3, seed=2, step=7 * epoch)]
    resumed, step = [], stop
    while step < len(stream):
        served = [b.tolist() for b in _sampler(20, 3, seed=2, step=step)]
        taken = served[:2] if step == stop else served  # Lightning cut the first epoch short after 2 batches
        resumed += taken
        step += len(taken)
    assert resumed == stream[stop:]


def test_ranks_split_the_same_permutation_into_disjoint_shards():
    shards = []
    for rank in range(2):
        sampler = _sampler(10, 2, seed=3, step=4 * 3, rank=rank, world_size=2)  # epoch 4: 3 batches a rank
        shards.append(torch.cat(list(sampler)).tolist())
    assert not set(shards[0]) & set(shards[1])
    assert sorted(shards[0] + shards[1]) == list(range(10))


def _tensors(splits):
    return [t for split in (splits.train, splits.val, splits.test) for t in (split.x, split.y)]


def test_synthetic_data_is_fixed_by_its_own_seed():
    """The same data_seed gives the same samples and splits whatever torch's global seed (the training seed);
    another data_seed, and nothing else changed, gives other samples."""
    torch.manual_seed(0)
    first = SyntheticData(n_features=2, data_seed=3).load()
    torch.manual_seed(1)
    second = SyntheticData(n_features=2, data_seed=3).load()
    other = SyntheticData(n_features=2, data_seed=4).load()  # only the data seed differs
    assert all(torch.equal(a, b) for a, b in zip(_tensors(first), _tensors(second), strict=True))
    assert all(not torch.equal(a, b) for a, b in zip(_tensors(first), _tensors(other), strict=True))
    assert [len(first.train), len(first.val), len(first.test)] == [800, 100, 100]
    assert [len(other.train), len(other.val), len(other.test)] == [800, 100, 100]


def test_synthetic_noise_free_data_is_exactly_linear():
    splits = SyntheticData(n_features=2, noise=0.0, weight=[1.0, -3.0], bias=0.5).load()
    x, y = splits.train.x, splits.train.y
    assert torch.allclose(y[:, 0], x[:, 0] - 3 * x[:, 1] + 0.5, atol=1e-6)


def _csv(tmp_path, text: str | bytes):
    path = tmp_path / "data.csv"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def test_csv_target_and_features_default_to_last_and_the_rest(tmp_path):
    rows = "\n".join(f"{i},{i * 10},{2 * i + 1}" for i in range(20))
    splits = CsvData(path=str(_csv(tmp_path, "a,b,y\n" + rows + "\n"))).load()
    assert (splits.train.x.shape[1], splits.train.y.shape[1]) == (2, 1)
    assert torch.equal(splits.train.y[:, 0], 2 * splits.train.x[:, 0] + 1)


def test_csv_named_target_and_features(tmp_path):
    rows = "\n".join(f"{i},{i * 10},{2 * i + 1}" for i in range(20))
    splits = CsvData(path=str(_csv(tmp_path, "a,b,y\n" + rows + "\n")), target="a", features=["y"]).load()
    assert torch.equal(splits.train.x[:, 0], 2 * splits.train.y[:, 0] + 1)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "is empty"),
        ("x,y\n", "has a header but no rows"),
        ("x,y\n1,2\n2\n", "line 3 has 1 cells, expected 2"),
        ("x,y\n1,2\n2,four\n", "line 3, column 'y': 'four' is not a number"),
        ("x,y\n1,2\nnan,4\n", "line 3, column 'x': nan is not a finite number"),
        ("x,y\n1,2\n2,inf\n", "line 3, column 'y': inf is not a finite number"),
        ("x,y\n1,2\n2,4\n", "2 rows are too few"),
        ("x,x,y\n1,1,2\n", "has the column name\\(s\\) 'x' more than once; expected one name per column"),
        (b"caf\xe9,y\n1,2\n", "is not UTF-8 text \\(it holds the byte 0xe9\\); expected a CSV text file"),
        (b"x,y\n1,2\n2,caf\xe9\n", "is not UTF-8 text \\(it holds the byte 0xe9\\)"),
    ],
)
def test_bad_csv_is_refused_with_the_reason(tmp_path, text, message):
    with pytest.raises(InvalidInput, match=message):
        CsvData(path=str(_csv(tmp_path, text))).load()


def test_csv_from_a_spreadsheet_byte_order_mark_quotes_and_crlf(tmp_path):
    rows = "".join(f'"{i}","{2 * i}"\r\n' for i in range(20))
    path = _csv(tmp_path, "\ufeffx,y\r\n" + rows)
    splits = CsvData(path=str(path), features=["x"], target="y").load()
    assert torch.equal(splits.train.y, 2 * splits.train.x)


def test_missing_csv_column_lists_the_columns(tmp_path):
    path = _csv(tmp_path, "x,y\n1,2\n2,4\n3,6\n4,8\n5,10\n")
    with pytest.raises(InvalidInput, match=r"data\.source\.features: no column 'z' .* its columns are x, y"):
        CsvData(path=str(path), features=["z"])  # said when the source is built, before any tensor is made


def test_a_csv_file_is_parsed_once_while_it_is_unchanged(tmp_path):
    """The config check builds the source, and the run builds it again: the second reading is the first's. A
    file rewritten in between, at once and to the same size (the same modification time, often), is read anew."""
    path = _csv(tmp_path, "x,y\n" + "".join(f"{i},{i % 2}\n" for i in range(10)))
    first, second = CsvData(path=str(path)), CsvData(path=str(path))
    assert second.table is first.table and not first.table.flags.writeable
    path.write_text("x,y\n" + "".join(f"{i},{(i + 1) % 2}\n" for i in range(10)))
    changed = CsvData(path=str(path))
    assert changed.table[:, 1].tolist() == [(i + 1) % 2 for i in range(10)]
    assert torch.equal(changed.load().train.y, (changed.load().train.x + 1) % 2)
