"""The LightningDataModule (the `data` config group): a source's in-memory X/Y tensors, served in batches.

Batches are cut with one index operation per batch (a slice, or one fancy-index when shuffled) instead of
`DataLoader(TensorDataset(...))`'s sample-by-sample indexing and collating, which is several times slower.
On an accelerator the splits are moved to its memory once, when they fit there, and batches are cut there:
gathered on the CPU and copied over at every step, batches of 65536 reached 0.085x the samples per second of a
plain CUDA loop on an H200 (docs/scaling.md).
"""

from __future__ import annotations

import functools
import itertools
import math
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import lightning as L
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

from linreg import hardware, least_squares
from linreg.checks import WHITEN, require_loader_settings
from linreg.errors import InvalidInput
from linreg.least_squares import Optimum
from linreg.sources import Source, Split, Splits
from linreg.standardization import Standardization


class IndexBatches(Sampler):
    """Yields one index object per batch: a slice in order (a view, no copy) or an index tensor when shuffled.

    The batches form one stream, epoch after epoch, each epoch shuffled from (seed, epoch). Every iteration
    goes on from `position()`, the number of batches already trained on (the Trainer's global step), to the
    end of that epoch. So a resumed run continues the stream exactly where the stopped one left it, whatever
    Lightning's own epoch counter says (it counts an epoch cut short as completed, and restarts an epoch that
    ended on the run's last step as if batches were still to come), and every DDP rank, being at the same
    step, draws the same permutation and takes its own shard of it.

    `repeat` serves the epoch's batches that many times over: the full batch is served `iters` times in one
    epoch, so that Lightning's per-epoch work (loader and hook set-up) runs once per run, not once per step.

    A shuffled epoch's order is always drawn on the CPU, from the CPU generator (the order is then the same
    on every device, and a resumed or GPU run trains on the batches a CPU run does), and moved to `device`, the
    device the data is on, once per epoch; the batches' index tensors are its pieces there. `prefetch` draws
    the next epoch's order in a background thread while this epoch trains (torch releases the GIL): drawing
    1.6 million rows' order takes 75-160 ms on one core here, longer than a GPU's whole epoch of them.
    """

    def __init__(
        self,
        n: int,
        batch_size: int,
        shuffle: bool,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        position: Callable[[], int] = lambda: 0,
        repeat: int = 1,
        device: torch.device | str = "cpu",
        prefetch: bool = False,
    ) -> None:
        self.n, self.batch_size, self.shuffle, self.seed = n, batch_size, shuffle, seed
        self.rank, self.world_size, self.position, self.repeat = rank, world_size, position, repeat
        self.device, self.prefetch = torch.device(device), prefetch
        self._ahead: tuple[int, Future[Tensor]] | None = None  # (epoch, its order being drawn)
        self._drawer: ThreadPoolExecutor | None = None  # made on first use: its thread, in the process that uses it

    def _shard(self) -> tuple[int, int]:
        """This rank's equal share of the positions: [start, stop)."""
        return self.rank * self.n // self.world_size, (self.rank + 1) * self.n // self.world_size

    def __len__(self) -> int:
        start, stop = self._shard()
        return math.ceil((stop - start) / self.batch_size) * self.repeat

    def __iter__(self) -> Iterator[slice | Tensor]:
        epoch, skip = divmod(self.position(), len(self))
        return itertools.islice(self._batches(epoch), skip, None)

    def _batches(self, epoch: int) -> Iterator[slice | Tensor]:
        lo, hi = self._shard()
        if self.shuffle:
            batches: list[slice] | tuple[Tensor, ...] = self._order(epoch).split(self.batch_size)
        else:
            batches = [slice(start, min(start + self.batch_size, hi)) for start in range(lo, hi, self.batch_size)]
        for _ in range(self.repeat):
            yield from batches

    def _order(self, epoch: int) -> Tensor:
        """This rank's share of `epoch`'s shuffled order, on `device`; the next epoch's drawn meanwhile if asked."""
        ahead, self._ahead = self._ahead, None
        order = ahead[1].result() if ahead is not None and ahead[0] == epoch else self._draw(epoch)
        if self.prefetch:
            self._drawer = self._drawer or ThreadPoolExecutor(max_workers=1, thread_name_prefix="next-epoch-order")
            self._ahead = (epoch + 1, self._drawer.submit(self._draw, epoch + 1))
        return order.to(self.device)

    def _draw(self, epoch: int) -> Tensor:
        lo, hi = self._shard()
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(self.n, generator=generator)[lo:hi]


class InMemoryDataset(Dataset):
    """Indexed by a whole batch at once (see `IndexBatches`), not by one sample, on the device `split` is on."""

    def __init__(self, split: Split) -> None:
        self.split = split

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, index: slice | Tensor) -> tuple[Tensor, Tensor]:
        if isinstance(index, slice):
            return self.split.x[index], self.split.y[index]  # views: no copy
        # index_select gathers rows about 5x faster than x[index] (advanced indexing) on wide batches
        return self.split.x.index_select(0, index), self.split.y.index_select(0, index)


class RegressionDataModule(L.LightningDataModule):
    """Serves the train/val/test splits of a `source` (`linreg.sources`), held in memory.

    `batch_size=None` is the full batch (the notebook's gradient descent); an integer gives mini-batches,
    reshuffled every epoch from `shuffle_seed` unless `shuffle=False` (then served in order, as views: no
    copy). Under DDP each rank trains on its own equal shard, so `use_distributed_sampler` stays off.

    `standardize=True` serves every split standardized with the training split's statistics, `"whiten"` also
    whitened (`linreg.standardization`); `splits` stays the source's data, in its own units. `intercept`
    says whether the model fits one (`data.intercept` follows `model.bias`): without, the data is scaled but not
    centred and the least-squares optimum goes through the origin. The loaders serve
    float64 when the Trainer trains in float64 (`+trainer.precision=64-true`), float32 otherwise, and a CSV
    file's numbers reach them without passing through float32. On an accelerator they serve from its memory
    when the data fits there (`on_device`), in the same order.
    """

    def __init__(
        self,
        source: Source,
        batch_size: int | None = None,
        shuffle: bool = True,
        shuffle_seed: int = 0,
        standardize: bool | str = False,
        intercept: bool = True,
    ) -> None:
        super().__init__()
        require_loader_settings(batch_size, shuffle, shuffle_seed, standardize, intercept)
        if not callable(getattr(source, "load", None)):
            raise InvalidInput(
                f"data.source: {source!r} is not allowed; expected a source, as in data=seed, synthetic or csv"
            )
        self.source = source
        self.batch_size, self.shuffle, self.shuffle_seed = batch_size, shuffle, shuffle_seed
        self.standardize, self.intercept = standardize, intercept
        self._splits: Splits | None = None
        self._standardization: Standardization | None = None
        self._served: tuple[torch.dtype, Splits] | None = None
        self._on_device: tuple[Splits, torch.device, Splits] | None = None  # (served, device, where batches are cut)

    @property
    def name(self) -> str:
        return self.source.name

    @property
    def splits(self) -> Splits:
        """The source's data, read on first use: a CSV file is parsed once per run, whatever asks first."""
        if self._splits is None:
            splits = self.source.load()
            rows = len(splits.train)
            if self.batch_size is not None and self.batch_size > rows:  # it would be recorded, but never served
                raise InvalidInput(
                    f"data.batch_size: {self.batch_size} is larger than the {rows} training rows of data={self.name}; "
                    f"expected at most {rows}, or null for the full batch"
                )
            self._splits = splits
        return self._splits

    @property
    def standardization(self) -> Standardization:
        """The training split's statistics (and whitening) when `standardize`, else the identity. A resumed run
        sets the ones its checkpoint holds, so that its data is served exactly as before."""
        if self._standardization is None:
            train, whiten = self.splits.train, self.standardize == WHITEN
            self._standardization = (
                Standardization.of(train.x, train.y, centre=self.intercept, whiten=whiten)
                if self.standardize
                else Standardization()
            )
        return self._standardization

    @standardization.setter
    def standardization(self, standardization: Standardization) -> None:
        self._standardization, self._served = standardization, None

    @property
    def dtype(self) -> torch.dtype:
        """What the loaders serve: the Trainer's float64 when it trains in float64, else float32."""
        precision = str(self.trainer.precision) if self.trainer is not None else ""
        return torch.float64 if precision.startswith("64") else torch.float32

    @property
    def served(self) -> Splits:
        """The splits as the loaders serve them: standardized (if asked) and in `dtype`. Without
        standardization a split already in `dtype` is served as it is (no copy)."""
        if self._served is None or self._served[0] != self.dtype:
            splits = self.splits
            # The first loader may be asked for under the step-0 validation's inference mode, whose tensors
            # training could not use: these are made as ordinary tensors.
            with torch.inference_mode(False):
                served = Splits(*(self._serve(part) for part in (splits.train, splits.val, splits.test)))
            self._served = (self.dtype, served)
        return self._served[1]

    @property
    def device(self) -> torch.device:
        """The device the Trainer trains on (its strategy's root device: a rank's own GPU under DDP)."""
        return self.trainer.strategy.root_device if self.trainer is not None else torch.device("cpu")

    @property
    def on_device(self) -> Splits:
        """The served splits where the loaders cut batches: on an accelerator, copies in its memory, made once,
        when they fit in what it can give now (`hardware.device_room`); else `served` itself, on the CPU, each
        batch then copied over by Lightning (one line says so)."""
        served, device = self.served, self.device
        if device.type == "cpu":
            return served
        if self._on_device is None or self._on_device[0] is not served or self._on_device[1] != device:
            needed, room = self.device_bytes(served), hardware.device_room(device)
            if room is not None and needed <= room:
                with torch.inference_mode(False):  # as in `served`: the first loader may be asked for under it
                    moved = Splits(*(Split(part.x.to(device), part.y.to(device)) for part in served))
            else:
                moved = served
                free = "it cannot say how much it has free" if room is None else f"it can give {room / 2**20:.0f} MiB"
                print(
                    f"warning: data: {device} would need {needed / 2**20:.0f} MiB for the data, and {free}; "
                    "batches are cut on the CPU and copied over at every step (slower)",
                    file=sys.stderr,
                )
            self._on_device = (served, device, moved)
        return self._on_device[2]

    def device_bytes(self, served: Splits) -> int:
        """What serving from an accelerator's memory takes there: the three splits, and with shuffled
        mini-batches an epoch's order (int64) and the three gathered batches that can be alive at once (the
        one trained on, the one Lightning fetches ahead, the one being cut). The model's own are negligible."""
        data = sum(t.numel() * t.element_size() for part in served for t in (part.x, part.y))
        if not (self.shuffle and self.batch_size is not None):
            return data  # batches are slices of the splits: views, no copy
        train = served.train
        row = train.x[:1].numel() * train.x.element_size() + train.y[:1].numel() * train.y.element_size()
        return data + len(train) * 8 + 3 * self.batch_size * row

    def _serve(self, split: Split) -> Split:
        standardization, dtype = self.standardization, self.dtype
        if standardization.is_identity:
            return Split(split.x.to(dtype), split.y.to(dtype))
        # Computed in the wider of the source's dtype and the served one, then cast.
        x = standardization.inputs(split.x.to(torch.promote_types(split.x.dtype, dtype))).to(dtype)
        y = standardization.targets(split.y.to(torch.promote_types(split.y.dtype, dtype))).to(dtype)
        return Split(x, y)

    def trained_units(self, split: Split) -> Split:
        """`split` as gradient descent sees it: for the exact answers of `linreg.least_squares`, which must
        refer to what is trained. Standardized in float64 when asked; otherwise `split` itself (those
        answers take it to float64 block by block, with no copy of the whole)."""
        standardization = self.standardization
        if standardization.is_identity:
            return split
        return Split(standardization.inputs(split.x.double()), standardization.targets(split.y.double()))

    @functools.cached_property
    def optimum(self) -> Optimum:
        """The least-squares optimum of the training split in the data's units, computed once: the run's
        record and the fit pictures both need it."""
        return least_squares.optimum(self.splits.train.x, self.splits.train.y, intercept=self.intercept)

    def has_rows(self, stage: str) -> bool:
        """Whether the "val" or "test" split holds any rows (`val_fraction=0` gives all rows to training)."""
        return len(getattr(self.splits, stage)) > 0

    @property
    def n_features(self) -> int:
        return self.splits.train.x.shape[1]

    @property
    def n_targets(self) -> int:
        return self.splits.train.y.shape[1]

    def effective_batch_size(self, processes: int = 1) -> int:
        """The number of training samples per optimizer step (the whole set for the full batch): under DDP
        each of the `processes` steps on its own batch, and their gradients are averaged."""
        return len(self.splits.train) if self.batch_size is None else self.batch_size * processes

    def require_even_shards(self, world_size: int) -> None:
        """DDP ranks must train on equal shards: otherwise their gradients do not average to the full-data one,
        and with mini-batches one rank would wait forever for a step the others never take."""
        rows = len(self.splits.train)
        if rows % world_size:
            raise InvalidInput(
                f"trainer.devices: {world_size} processes cannot share the {rows} training rows of data={self.name} "
                f"equally; expected a number of processes that divides {rows}, or a data set of a multiple of "
                f"{world_size} training rows"
            )

    def _loader(self, split: Split, shuffle: bool, sharded: bool = False) -> DataLoader:
        """Training is sharded across DDP ranks; validation and test are scored whole on every rank, so that
        any split size works and the metrics, gathered over ranks, are those of the whole split."""
        rank, world_size = (self.trainer.global_rank, self.trainer.world_size) if self.trainer and sharded else (0, 1)
        # The full batch `iters` times in one epoch: Lightning's per-epoch work runs once, not at every step.
        repeat = self.trainer.max_steps if self.trainer and sharded and self.batch_size is None else 1
        batches = IndexBatches(
            len(split),
            self.batch_size or len(split),
            shuffle=shuffle and self.batch_size is not None,
            seed=self.shuffle_seed,
            rank=rank,
            world_size=world_size,
            position=(lambda: self.trainer.global_step) if self.trainer and sharded else (lambda: 0),
            repeat=max(repeat, 1),  # max_steps is -1 for a Trainer that counts epochs instead
            device=split.x.device,
            prefetch=split.x.device.type != "cpu",  # a CPU's cores are busy cutting batches: nothing to overlap
        )
        return DataLoader(InMemoryDataset(split), batch_size=None, sampler=batches)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.on_device.train, shuffle=self.shuffle, sharded=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.on_device.val, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.on_device.test, shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        return self._loader(self.on_device.test, shuffle=False)
