"""What a config may instantiate, and instantiating it with errors as one line.

A config is input: the command line, and a run folder's saved `.hydra/config.yaml` (read by `resume=`), like
a checkpoint's recorded model class. Hydra's `instantiate` imports and calls whatever `_target_` names (it
refuses only a few, like `os.system`), so every `_target_` is checked against an allowlist: this package's
classes, `torch.optim` optimizers, Lightning's Trainer, loggers and callbacks. The check is made twice over:
the name as written (text only, before any import: `linreg.config.check`), and then the class it imports as,
which must be a class *defined* in an allowed module (`linreg.record.os.open` is written under `linreg`,
but is `posix.open`, a function elsewhere). The config is resolved once, before the check, and built from
what was checked, so an interpolation cannot hide a target. Your own classes are allowed by naming their
module (or the class) in the environment variable LINREG_ALLOWED_TARGETS, comma-separated:
`LINREG_ALLOWED_TARGETS=mymodels,mylab.callbacks`. The environment, not the config, so that a config can
never allow itself. Config files themselves (in `conf/`, or a folder added with `--config-dir`) are trusted
like code: Hydra builds their `hydra.*` callbacks and launchers itself.
"""

from __future__ import annotations

import importlib
import inspect
import os
import re
from collections.abc import Iterator
from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf

from linreg.errors import InvalidInput

ALLOWED_TARGETS = (
    "linreg",
    "torch.optim",
    "lightning.Trainer",
    "lightning.pytorch.Trainer",
    "lightning.pytorch.trainer.trainer.Trainer",  # where the Trainer is defined
    "lightning.pytorch.loggers",
    "lightning.pytorch.callbacks",
)
ALLOWLIST_VARIABLE = "LINREG_ALLOWED_TARGETS"


_frozen_additions: tuple[str, ...] | None = None  # set by freeze_allowlist when a command starts


def freeze_allowlist() -> None:
    """Take the user's additions from the environment now, as the command starts, for the rest of the process:
    Hydra may change os.environ before the job runs (`hydra.job.env_set`), and a config must never widen its
    own allowlist."""
    global _frozen_additions
    _frozen_additions = _additions_in_environment()


def _additions_in_environment() -> tuple[str, ...]:
    return tuple(name.strip() for name in os.environ.get(ALLOWLIST_VARIABLE, "").split(",") if name.strip())


def allowed_targets() -> tuple[str, ...]:
    """The built-in allowlist and the user's additions from LINREG_ALLOWED_TARGETS, as the command started."""
    additions = _additions_in_environment() if _frozen_additions is None else _frozen_additions
    return (*ALLOWED_TARGETS, *additions)


def is_allowed(target: object) -> bool:
    """True for a dotted name equal to an allowed name or below one (`linreg.x`, not `linregx`), as text."""
    return isinstance(target, str) and any(
        target == allowed or target.startswith(allowed + ".") for allowed in allowed_targets()
    )


def targets(node: Any, key: str = "") -> Iterator[tuple[str, Any]]:
    """Every (`key`, `_target_` value) in a config tree, lists included, interpolations resolved."""
    if isinstance(node, DictConfig | ListConfig):
        node = OmegaConf.to_container(node, resolve=True)
    if isinstance(node, dict):
        for name, value in node.items():
            path = f"{key}.{name}" if key else str(name)
            if name == "_target_":
                yield path, value
            else:
                yield from targets(value, path)
    elif isinstance(node, list | tuple):
        for index, value in enumerate(node):
            yield from targets(value, f"{key}[{index}]")


def refuse_unallowed_targets(cfg: Any, where: str = "") -> None:
    """One line naming the first `_target_` whose name is outside the allowlist; nothing is imported to find it.

    `where` is the key at which `cfg` sits in the whole config (for the message).
    """
    for key, target in targets(cfg, where):
        if not is_allowed(target):
            raise _not_allowed(key, target)


def _not_allowed(key: str, target: object) -> InvalidInput:
    return InvalidInput(
        f"{key}: {target!r} is not an allowed target; expected a class of linreg, torch.optim or "
        f"Lightning's Trainer, loggers and callbacks, or one named in {ALLOWLIST_VARIABLE} (see the README)"
    )


def allowed_class(key: str, target: str) -> type:
    """The class an allowed `_target_` names, which must also be defined in an allowed module.

    Only modules whose name is allowed are imported to find it; a function, a class reached through an
    allowed module but defined elsewhere, or a missing name is refused and never called.
    """
    if not is_allowed(target):
        raise _not_allowed(key, target)
    module_name, _, name = target.rpartition(".")
    found: Any = None
    while module_name and found is None:  # `lightning.Trainer`, `pkg.module.Outer.Inner`: try shorter modules
        try:
            found = importlib.import_module(module_name)
        except ModuleNotFoundError:
            module_name, _, outer = module_name.rpartition(".")
            name = f"{outer}.{name}"
    for part in name.split("."):
        found = getattr(found, part, None)
    if not inspect.isclass(found):
        raise InvalidInput(f"{key}: {target!r} is not a class that can be imported; expected a class name")
    defined_as = f"{found.__module__}.{found.__qualname__}"
    if not is_allowed(defined_as):
        raise _not_allowed(key, f"{target} (defined as {defined_as})")
    return found


def build(key: str, node: DictConfig, **kwargs: Any) -> Any:
    """`hydra.utils.instantiate(node, **kwargs)` for allowed classes only, its errors as one line.

    A constructor that refuses a value with `InvalidInput` is passed through as it is (it names the key);
    any other refusal, such as an unexpected keyword, is reported for the config key `key`.
    """
    for path, target in targets(node, key):
        allowed_class(path, target)
    for name, value in kwargs.items():  # Hydra merges them into the node, where `${` would be read as code
        if isinstance(value, str) and "${" in value:
            expected = "expected a value without ${"
            raise InvalidInput(f"{key}.{name}: {value!r} would be read as an interpolation; {expected}")
    try:
        return instantiate(node, _convert_="all", **kwargs)
    except InstantiationException as error:
        cause: BaseException | None = error
        while cause is not None and not isinstance(cause, InvalidInput):
            cause = cause.__cause__
        if cause is not None:
            raise cause from None
        # Hydra's message: "Error in call to target 'T':\nTypeError(...)\nfull_key: data.source"
        call = re.search(r"Error in call to target '([^']+)'", str(error))
        where = re.search(r"^full_key: (\S+)", str(error), re.MULTILINE)
        reason = str(error.__cause__ or error).strip().splitlines()[0]
        nested = where is not None and where[1] != key  # a component's call failed: name it, not the outer node
        target = call[1] if nested and call else node.get("_target_")
        where_key = where[1] if nested else key
        unexpected = re.search(r"unexpected keyword argument '([^']+)'", reason)
        if unexpected:
            raise InvalidInput(
                f"{where_key}.{unexpected[1]}: {target} takes no argument '{unexpected[1]}'; expected one of "
                f"its arguments: {', '.join(_arguments(allowed_class(where_key, str(target))))}"
            ) from None
        raise InvalidInput(f"{where_key}: {target} refused its arguments: {reason}") from None


def _arguments(cls: type) -> list[str]:
    """The keyword arguments a class's constructor takes, as a config would give them."""
    parameters = inspect.signature(cls).parameters.values()
    return [p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
