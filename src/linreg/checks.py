"""Pure value checks: each names the key, the value and what is expected, in one line (`InvalidInput`).

No Hydra, no torch: the config checks, the data sources, the models and `predict.py` all use them, and a bad
value is answered before any heavy import starts.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from linreg.errors import InvalidInput


def require_number(key: str, value: object, minimum: float | None = None, positive: bool = False) -> None:
    """A finite int or float (not a bool, not a string), optionally bounded below."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInput(f"{key}: {value!r} is not a number; expected a finite number")
    if positive and value <= 0:
        raise InvalidInput(f"{key}: {value!r} is not allowed; expected a number > 0")
    if minimum is not None and value < minimum:
        raise InvalidInput(f"{key}: {value!r} is not allowed; expected a number >= {minimum:g}")


# The largest float32: the model, its data and its optimizer compute in float32, where anything beyond is inf.
FLOAT32_MAX = 3.4028234663852886e38


def require_float32(key: str, value: float) -> None:
    """A number float32 can hold: `lr=1e308` would otherwise fail inside the optimizer's first step."""
    if abs(value) > FLOAT32_MAX:
        raise InvalidInput(f"{key}: {value:g} is beyond float32's range; expected a magnitude below {FLOAT32_MAX:.3g}")


def require_count(key: str, value: object, minimum: int, optional: bool = False, maximum: int | None = None) -> None:
    """A whole number >= minimum (and <= maximum, if given), or null where `optional`."""
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        expected = f"a whole number >= {minimum}" + (" or null" if optional else "")
        raise InvalidInput(f"{key}: {value!r} is not allowed; expected {expected}")
    if maximum is not None and value > maximum:
        raise InvalidInput(f"{key}: {value} is too large; expected a whole number <= {maximum}")


def require_choice(key: str, value: object, choices: Iterable[str]) -> None:
    """One of a fixed set of names."""
    if value not in choices:
        raise InvalidInput(f"{key}: {value!r} is not allowed; expected one of {', '.join(choices)}")


def require_sizes(key: str, value: object) -> None:
    """A list of whole numbers >= 1, such as layer sizes (an empty list is allowed)."""
    if not isinstance(value, list | tuple) or not all(type(n) is int and n >= 1 for n in value):
        raise InvalidInput(f"{key}: {value!r} is not allowed; expected a list of whole numbers >= 1")


WHITEN = "whiten"  # data.standardize=whiten: standardized, then whitened (linreg.standardization)


def require_loader_settings(
    batch_size: object, shuffle: object, shuffle_seed: object, standardize: object, intercept: object
) -> None:
    """The DataModule's own settings (`data.batch_size`, ...): checked by `linreg.config` before torch's import,
    and by the DataModule itself when it is built from Python."""
    require_count("data.batch_size", batch_size, minimum=1, optional=True)
    for key, value in (("data.shuffle", shuffle), ("data.intercept", intercept)):
        if not isinstance(value, bool):
            raise InvalidInput(f"{key}: {value!r} is not allowed; expected true or false")
    if not isinstance(standardize, bool) and standardize != WHITEN:
        raise InvalidInput(f"data.standardize: {standardize!r} is not allowed; expected true, false or {WHITEN}")
    require_count("data.shuffle_seed", shuffle_seed, minimum=0, maximum=2**32 - 1)
