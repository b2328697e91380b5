"""The checks a composed config must pass before anything is built or written.

Hydra parses `lr=abc` into the string "abc" and `iters=0` into a valid int, so the rules live here, at one
entry point, and each failure is one line naming the key, the value and what is expected.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import InterpolationResolutionError

from linreg.errors import InvalidInput

OBJECTIVES = ("val_mse", "val_mae", "train_loss")


def require_number(key: str, value: object, minimum: float | None = None, positive: bool = False) -> None:
    """A finite int or float (not a bool, not a string), optionally bounded below."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInput(f"{key}: {value!r} is not a number; expected a finite number")
    if positive and value <= 0:
        raise InvalidInput(f"{key}: {value!r} is not allowed; expected a number > 0")
    if minimum is not None and value < minimum:
        raise InvalidInput(f"{key}: {value!r} is not allowed; expected a number >= {minimum:g}")


def require_count(key: str, value: object, minimum: int, optional: bool = False) -> None:
    """A whole number >= minimum (or null where `optional`)."""
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        expected = f"a whole number >= {minimum}" + (" or null" if optional else "")
        raise InvalidInput(f"{key}: {value!r} is not allowed; expected {expected}")


def validate(cfg: DictConfig) -> None:
    """Refuse a config that cannot describe a run, before anything is loaded, built or written."""
    try:
        OmegaConf.to_container(cfg, resolve=True)  # every ${...}, e.g. from `iters=${lrr}`, names a real key
    except InterpolationResolutionError as error:
        reason = str(error).splitlines()[0]
        expected = "expected a value, or ${key} naming a key of the config"
        raise InvalidInput(f"{error.full_key}: {reason}; {expected}") from None
    require_number("lr", cfg.lr, positive=True)
    require_count("iters", cfg.iters, minimum=1)
    require_count("seed", cfg.seed, minimum=0)
    if cfg.seed >= 2**32:
        raise InvalidInput(f"seed: {cfg.seed} is too large; expected a whole number below 2**32")
    require_count("threads", cfg.threads, minimum=1, optional=True)
    require_number("model.momentum", cfg.model.momentum, minimum=0.0)
    require_number("model.weight_decay", cfg.model.weight_decay, minimum=0.0)
    require_count("trainer.log_every_n_steps", cfg.trainer.log_every_n_steps, minimum=1)
    require_count("trainer.val_check_interval", cfg.trainer.val_check_interval, minimum=1)
    if cfg.objective not in OBJECTIVES:
        raise InvalidInput(f"objective: {cfg.objective!r} is not allowed; expected one of {', '.join(OBJECTIVES)}")
    for key, instead in TRAINER_KEYS_SET_BY_THE_RUN.items():
        if key in cfg.trainer:
            raise InvalidInput(f"trainer.{key}: the run sets it; expected {instead} instead")
    require_gpu_if_asked(cfg.trainer)
    validate_data(cfg.data)


# Trainer arguments `linreg.train` passes itself; one given with `+trainer.<key>=...` would be overridden.
TRAINER_KEYS_SET_BY_THE_RUN = {
    "max_steps": "iters=<optimizer steps>",
    "max_epochs": "iters=<optimizer steps>",
    "default_root_dir": "hydra.run.dir=<folder>",
    "logger": "logger=tensorboard, csv or none",
    "callbacks": "a callback added in src/linreg/train.py",
}


def require_gpu_if_asked(trainer: DictConfig) -> None:
    """`trainer=gpu` where torch sees no GPU: said at once, not as Lightning's exception after its import."""
    if trainer.get("accelerator") not in ("gpu", "cuda"):
        return
    import torch  # only here: a config is checked before torch's import (about 2 s) starts

    if not torch.cuda.is_available():
        raise InvalidInput(
            f"trainer.accelerator: {trainer.accelerator!r}, but torch {torch.__version__} sees no CUDA GPU here; "
            "expected a machine with an NVIDIA GPU and a CUDA build of torch, or trainer=cpu"
        )


def validate_data(data: DictConfig) -> None:
    """The data group's keys; the content of a CSV file is checked when it is read (`linreg.data`)."""
    require_count("data.batch_size", data.batch_size, minimum=1, optional=True)
    if not isinstance(data.shuffle, bool):
        raise InvalidInput(f"data.shuffle: {data.shuffle!r} is not allowed; expected true or false")
    for key in ("val_fraction", "test_fraction"):
        if key in data:
            require_number(f"data.{key}", data[key])
            if not 0 < data[key] < 1:
                raise InvalidInput(f"data.{key}: {data[key]} is not allowed; expected a number between 0 and 1")
    if "val_fraction" in data and data.val_fraction + data.test_fraction >= 1:
        raise InvalidInput(
            f"data.val_fraction + data.test_fraction = {data.val_fraction + data.test_fraction:g}; "
            "expected less than 1, to leave rows for training"
        )
    if "n_samples" in data:  # synthetic
        require_count("data.n_samples", data.n_samples, minimum=4)
        require_count("data.n_features", data.n_features, minimum=1)
        require_number("data.noise", data.noise, minimum=0.0)
        require_number("data.bias", data.bias)
        if data.weight is not None and len(data.weight) != data.n_features:
            raise InvalidInput(
                f"data.weight: {len(data.weight)} values given; expected {data.n_features} (one per feature) or null"
            )
        require_memory("data.n_samples", data.n_samples * (data.n_features + 1) * BYTES_PER_VALUE)
    if "path" in data:  # csv
        if not data.path:
            raise InvalidInput("data.path: not set; expected the path of a CSV file, e.g. data.path=my.csv")
        path = Path(data.path).expanduser()
        require_csv_file(path)
        # Parsing holds the text's numbers as float64 next to the float32 tensors; a number takes at least
        # two characters ("1,"), so the file's size bounds what the numbers need.
        require_memory("data.path", path.stat().st_size // 2 * BYTES_PER_VALUE)


def require_csv_file(path: Path) -> None:
    """The one message for a missing CSV file, from the config check and from `linreg.sources` alike."""
    if not path.is_file():
        raise InvalidInput(f"data.path: no such file '{path}'; expected a CSV file with a header row")


# float32 X and Y, their train/val/test copies, and a float64 parse or generation buffer: about 4x the data
BYTES_PER_VALUE = 4 * 4


def require_memory(key: str, needed: int) -> None:
    """Refuse data that would not fit in the memory available now: a clear error instead of a swap storm."""
    available = available_memory()
    if needed > 0.8 * available:
        raise InvalidInput(
            f"{key}: the data needs about {needed / 2**30:.1f} GiB in memory, more than the "
            f"{available / 2**30:.1f} GiB available; expected a smaller data set"
        )


def available_memory() -> int:
    """Bytes the kernel says a process can still allocate without swapping (MemAvailable)."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
