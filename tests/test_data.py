"""The DataModules: shapes, splits, batches, and CSV files refused with the reason."""

import pytest
import torch

from linreg.data import CsvData, IndexBatches, SeedData, SyntheticData
from linreg.errors import InvalidInput


def test_seed_data_is_the_notebooks():
    data = SeedData()
    data.setup()
    assert data.splits.train.x.tolist() == [[1.0], [2.0], [3.0], [4.0]]
    assert data.splits.train.y.tolist() == [[2.0], [4.0], [6.0], [8.0]]
    assert data.splits.test.x.tolist() == [[5.0]] and data.splits.test.y.tolist() == [[10.0]]
    (batch,) = list(data.train_dataloader())
    assert [t.shape for t in batch] == [(4, 1), (4, 1)]  # Y stays (N, 1) for torchmetrics


@pytest.mark.parametrize(("n", "batch_size"), [(10, 3), (7, 7), (5, 100), (1, 1)])
def test_shuffled_batches_cover_every_sample_once_per_epoch(n, batch_size):
    sampler = IndexBatches(n, batch_size, shuffle=True, seed=1)
    orders = []
    for epoch in range(3):
        sampler.set_epoch(epoch)
        batches = list(sampler)
        assert len(batches) == len(sampler)
        assert all(len(b) <= batch_size for b in batches)
        orders.append(torch.cat(batches).tolist())
        assert sorted(orders[-1]) == list(range(n))
    if n >= 5:
        assert orders[0] != orders[1]  # reshuffled each epoch


def test_ranks_split_the_same_permutation_into_disjoint_shards():
    shards = []
    for rank in range(2):
        sampler = IndexBatches(9, 2, shuffle=True, seed=3, rank=rank, world_size=2)
        sampler.set_epoch(4)
        shards.append(torch.cat(list(sampler)).tolist())
    assert not set(shards[0]) & set(shards[1])
    assert sorted(shards[0] + shards[1]) == list(range(9))


def test_synthetic_data_is_fixed_by_its_own_seed():
    first, second, other = (
        SyntheticData(n_features=2),
        SyntheticData(n_features=2),
        SyntheticData(data_seed=1),
    )
    for data in (first, second, other):
        data.setup()
    assert torch.equal(first.splits.train.x, second.splits.train.x)
    assert not torch.equal(first.splits.train.y[:, 0], other.splits.train.y[:, 0])
    assert [len(first.splits.train), len(first.splits.val), len(first.splits.test)] == [800, 100, 100]


def test_synthetic_noise_free_data_is_exactly_linear():
    data = SyntheticData(n_features=2, noise=0.0, weight=[1.0, -3.0], bias=0.5)
    data.setup()
    x, y = data.splits.train.x, data.splits.train.y
    assert torch.allclose(y[:, 0], x[:, 0] - 3 * x[:, 1] + 0.5, atol=1e-6)


def _csv(tmp_path, text):
    path = tmp_path / "data.csv"
    path.write_text(text)
    return path


def test_csv_target_and_features_default_to_last_and_the_rest(tmp_path):
    rows = "\n".join(f"{i},{i * 10},{2 * i + 1}" for i in range(20))
    data = CsvData(path=str(_csv(tmp_path, "a,b,y\n" + rows + "\n")))
    data.setup()
    assert (data.n_features, data.n_targets) == (2, 1)
    x, y = data.splits.train.x, data.splits.train.y
    assert torch.equal(y[:, 0], 2 * x[:, 0] + 1)


def test_csv_named_target_and_features(tmp_path):
    rows = "\n".join(f"{i},{i * 10},{2 * i + 1}" for i in range(20))
    data = CsvData(path=str(_csv(tmp_path, "a,b,y\n" + rows + "\n")), target="a", features=["y"])
    data.setup()
    assert torch.equal(data.splits.train.x[:, 0], 2 * data.splits.train.y[:, 0] + 1)


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
    ],
)
def test_bad_csv_is_refused_with_the_reason(tmp_path, text, message):
    data = CsvData(path=str(_csv(tmp_path, text)))
    with pytest.raises(InvalidInput, match=message):
        data.setup()


def test_missing_csv_column_lists_the_columns(tmp_path):
    data = CsvData(path=str(_csv(tmp_path, "x,y\n1,2\n2,4\n3,6\n4,8\n5,10\n")), features=["z"])
    with pytest.raises(InvalidInput, match=r"data\.features: no column 'z' .* its columns are x, y"):
        data.setup()
