"""The data: sources and their splits, the DataModule's batches, and CSV files refused with the reason."""

import math

import lightning as L
import pytest
import torch

from linreg import hardware
from linreg.data import IndexBatches, RegressionDataModule
from linreg.errors import InvalidInput
from linreg.sources import CsvData, SeedData, Split, SyntheticData

NO_GPU = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (these CI machines have none)")


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


def todays_stream(rows: int, batch_size: int, seed: int, epochs: int) -> list[list[int]]:
    """The rows of each batch as the CPU sampler drew them before batches were cut on a device: epoch e's
    order from torch's CPU generator seeded with (seed, e). Pinned, so that no device changes a record."""
    stream = []
    for epoch in range(epochs):
        order = torch.randperm(rows, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))
        stream += [piece.tolist() for piece in order.split(batch_size)]
    return stream


@pytest.mark.parametrize("stop", [0, 5, 7, 8, 14])
def test_orders_drawn_ahead_are_todays_stream_resumed_anywhere(stop):
    """On an accelerator one sampler draws the next epoch's order while an epoch trains; served from `stop` on,
    with the first epoch cut short after 2 batches as Lightning may do, it is today's stream's tail."""
    step = stop
    sampler = IndexBatches(20, 3, shuffle=True, seed=2, position=lambda: step, prefetch=True)
    served = []
    while step < 35:
        batches = [batch.tolist() for batch in sampler]
        taken = batches[:2] if step == stop else batches
        served += taken
        step += len(taken)
    assert served == todays_stream(20, 3, seed=2, epochs=5)[stop:35]


@pytest.mark.parametrize("batch_size", [3, None])
def test_batches_are_cut_on_the_device_the_data_is_on(batch_size):
    """A split on 'meta' (a device that holds no values) is served as batches on 'meta' of the CPU's shapes, cut
    with indices on 'meta' (a slice for the full batch): nothing is made on the CPU and copied over."""
    datamodule = RegressionDataModule(SeedData(), batch_size=batch_size)
    x, y = torch.arange(20.0).reshape(10, 2), torch.arange(10.0).reshape(10, 1)
    on_cpu = datamodule._loader(Split(x, y), shuffle=True, sharded=True)
    on_meta = datamodule._loader(Split(x.to("meta"), y.to("meta")), shuffle=True, sharded=True)
    assert [[t.shape for t in batch] for batch in on_meta] == [[t.shape for t in batch] for batch in on_cpu]
    assert {t.device.type for batch in on_meta for t in batch} == {"meta"}
    indices = list(on_meta.sampler)
    assert len(indices) == (4 if batch_size else 1)
    assert all(index.device.type == "meta" for index in indices) if batch_size else indices == [slice(0, 10)]


class BatchRecorder(L.LightningModule):
    """Trains nothing (lr 0): keeps every training batch's inputs, and the device each came on."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(2, 1))
        self.batches: list[torch.Tensor] = []
        self.devices: set[str] = set()

    def training_step(self, batch, batch_idx):
        x, y = batch
        self.batches.append(x.cpu())
        self.devices.add(x.device.type)
        return torch.nn.functional.mse_loss(x @ self.weight, y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.0)


def _fit(accelerator: str, batch_size: int | None, steps: int, checkpoint=None) -> tuple[BatchRecorder, object]:
    datamodule = RegressionDataModule(SyntheticData(n_samples=50, n_features=2), batch_size=batch_size, shuffle_seed=5)
    model = BatchRecorder()
    trainer = L.Trainer(
        accelerator=accelerator, devices=1, max_steps=steps, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0,
    )  # fmt: skip
    trainer.fit(model, datamodule=datamodule, ckpt_path=checkpoint)
    return model, trainer


@pytest.mark.filterwarnings("ignore:You passed in a `val_dataloader` but have no `validation_step`")
@pytest.mark.filterwarnings("ignore:You're resuming from a checkpoint that ended before")  # IndexBatches goes on
@pytest.mark.parametrize("accelerator", ["cpu", pytest.param("gpu", marks=NO_GPU)])
@pytest.mark.parametrize("batch_size", [6, None])
def test_a_fit_trains_on_todays_batches_on_any_device_and_across_a_resume(tmp_path, accelerator, batch_size):
    """40 training rows in batches of 6 (7 a epoch) or the full batch, 20 steps: the batches a Trainer trains on,
    in one go or stopped at step 9 and resumed from its checkpoint, are today's CPU stream, in order and value.
    On a GPU they come from the GPU's memory already (Lightning copies nothing)."""
    x = SyntheticData(n_samples=50, n_features=2).load().train.x.float()
    expected = [x[rows] for rows in todays_stream(40, 6, seed=5, epochs=3)[:20]] if batch_size else [x] * 20
    whole, _ = _fit(accelerator, batch_size, 20)
    first, trainer = _fit(accelerator, batch_size, 9)
    trainer.save_checkpoint(tmp_path / "step9.ckpt")
    rest, _ = _fit(accelerator, batch_size, 20, checkpoint=tmp_path / "step9.ckpt")
    for served in (whole.batches, first.batches + rest.batches):
        assert len(served) == 20
        assert all(torch.equal(a, b) for a, b in zip(served, expected, strict=True))
    assert whole.devices == rest.devices == {"cuda" if accelerator == "gpu" else "cpu"}


def test_only_a_cuda_gpu_says_how_much_memory_the_data_may_take():
    assert hardware.device_room(torch.device("cpu")) is None
    assert hardware.device_room(torch.device("meta")) is None


@NO_GPU
def test_a_gpus_room_for_the_data_is_a_share_of_what_it_has():
    _free, total = torch.cuda.mem_get_info()
    assert 0 < hardware.device_room(torch.device("cuda")) <= hardware.USABLE_SHARE * total


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
