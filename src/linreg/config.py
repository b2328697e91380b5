"""The checks a composed config must pass before anything is built or written.

Hydra parses `lr=abc` into the string "abc" and `iters=0` into a valid int, so the rules live here, at one
entry point, and each failure is one line naming the key, the value and what is expected.
"""

from __future__ import annotations

import math

from omegaconf import DictConfig

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
    """Refuse a config that cannot describe a run, before any folder or file is touched."""
    require_number("lr", cfg.lr, positive=True)
    require_count("iters", cfg.iters, minimum=1)
    require_count("seed", cfg.seed, minimum=0)
    if cfg.seed >= 2**32:
        raise InvalidInput(f"seed: {cfg.seed} is too large; expected a whole number below 2**32")
    require_count("threads", cfg.threads, minimum=1, optional=True)
    require_count("data.batch_size", cfg.data.batch_size, minimum=1, optional=True)
    require_number("model.momentum", cfg.model.momentum, minimum=0.0)
    require_number("model.weight_decay", cfg.model.weight_decay, minimum=0.0)
    require_count("trainer.log_every_n_steps", cfg.trainer.log_every_n_steps, minimum=1)
    require_count("trainer.val_check_interval", cfg.trainer.val_check_interval, minimum=1)
    if cfg.objective not in OBJECTIVES:
        raise InvalidInput(f"objective: {cfg.objective!r} is not allowed; expected one of {', '.join(OBJECTIVES)}")
