"""The run-level checks a composed config must pass before anything is built or written, and their rules.

Hydra parses `lr=abc` into the string "abc" and `iters=0` into a valid int, so each value is checked, and
each failure is one line naming the key, the value and what is expected. `check` covers the run's own
keys; the classes the config names check theirs with `linreg.checks` when they are built. The data source is
built here already (`linreg.sources` needs no torch to build one), so that a bad data value or CSV file is
answered before the heavy imports, like a bad `lr`.
"""

from __future__ import annotations

import difflib
import re
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import InterpolationResolutionError

from linreg.checks import require_count, require_float32, require_loader_settings, require_number
from linreg.errors import InvalidInput
from linreg.hardware import require_gpus
from linreg.record import MONITORABLE, OBJECTIVES
from linreg.suggest import dotted_keys
from linreg.targets import build, refuse_unallowed_targets

# The config groups whose choice the command line may change (`data=csv`); `null` is not a choice of theirs.
GROUPS = ("data", "model", "optimizer", "trainer", "callbacks", "logger")

# The top-level keys a run reads (conf/train.yaml's, a test holds them equal): `+name=...` beside them adds a key
# that nothing reads, unless an interpolation such as `hydra.run.dir=runs/${name}` uses it.
TOP_LEVEL_KEYS = ("lr", "iters", "seed", "threads", "objective", "resume", *GROUPS)


def check(cfg: DictConfig) -> DictConfig:
    """Refuse a config that cannot describe a run, before anything is imported, built, opened or written, and
    return it resolved: the config the run builds from.

    The config is resolved once, here, and checked as resolved: what is built is what was checked. A string
    that still reads as an interpolation after resolution (an escaped `\\${...}`) is refused, so that no later
    step (Hydra's `instantiate` resolves what it is given) can bring it to life. These are the run's own keys
    and every `_target_` (`linreg.targets`); the classes a config names check their own keys when they are
    built (`linreg.sources`, `linreg.data`, `linreg.models`, torch's optimizers), a source of this project's
    here already (`require_source`).
    """
    try:
        container = OmegaConf.to_container(cfg, resolve=True)  # every ${...}, e.g. `iters=${lrr}`, names a real key
    except InterpolationResolutionError as error:
        reason = str(error).splitlines()[0]
        expected = "expected a value, or ${key} naming a key of the config"
        raise InvalidInput(f"{error.full_key}: {reason}; {expected}") from None
    refuse_live_text(container)
    refuse_paths_out_of_the_run_folder(container)
    refuse_unallowed_targets(container)
    refuse_unread_keys(cfg)
    cfg = OmegaConf.create(container)  # no interpolation left: nothing in it is resolved a second time
    for group in ("data", "model", "optimizer", "trainer"):
        node = cfg.get(group)
        if not isinstance(node, DictConfig) or "_target_" not in node:
            raise InvalidInput(f"{group}: {node!r} is not allowed; expected one of the configs in conf/{group}/")
    for group in ("callbacks", "logger"):  # named entries, each one object to build
        node = cfg.get(group)
        if not isinstance(node, DictConfig):
            raise InvalidInput(f"{group}: {node!r} is not allowed; expected one of the configs in conf/{group}/")
        for name, entry in node.items():
            if not isinstance(entry, DictConfig) or "_target_" not in entry:
                raise InvalidInput(f"{group}.{name}: {entry!r} is not allowed; expected {{_target_: <a class>, ...}}")
    require_number("lr", cfg.lr, positive=True)
    require_float32("lr", cfg.lr)
    if "lr" in cfg.optimizer:
        require_number("optimizer.lr", cfg.optimizer.lr, positive=True)
        require_float32("optimizer.lr", cfg.optimizer.lr)
    if "momentum" in cfg.optimizer:  # torch takes any momentum >= 0; from 1 on, old gradients never fade out
        momentum = cfg.optimizer.momentum
        require_number("optimizer.momentum", momentum)
        if not 0 <= momentum < 1:
            raise InvalidInput(
                f"optimizer.momentum: {momentum!r} is not allowed; expected a number in [0, 1) (from 1 on, past "
                "gradients never fade and the steps never settle)"
            )
    require_count("iters", cfg.iters, minimum=1)
    require_count("seed", cfg.seed, minimum=0)
    if cfg.seed >= 2**32:
        raise InvalidInput(f"seed: {cfg.seed} is too large; expected a whole number below 2**32")
    require_count("threads", cfg.threads, minimum=1, optional=True)
    require_count("trainer.log_every_n_steps", cfg.trainer.log_every_n_steps, minimum=1)
    require_count("trainer.val_check_interval", cfg.trainer.val_check_interval, minimum=1)
    if cfg.objective not in OBJECTIVES:
        raise InvalidInput(f"objective: {cfg.objective!r} is not allowed; expected one of {', '.join(OBJECTIVES)}")
    for key, instead in TRAINER_KEYS_SET_BY_THE_RUN.items():
        if key in cfg.trainer:
            raise InvalidInput(f"trainer.{key}: the run sets it; expected {instead} instead")
    for key, (harmless, why) in TRAINER_KEYS_THAT_BREAK_A_PROMISE.items():
        if key in cfg.trainer and cfg.trainer[key] not in harmless:
            raise InvalidInput(f"trainer.{key}: {cfg.trainer[key]!r} is refused: {why}")
    strategy = str(cfg.trainer.get("strategy", ""))
    if any(word in strategy for word in ("spawn", "fork", "notebook")):
        raise InvalidInput(
            f"trainer.strategy: {strategy!r} is refused: its processes keep the steps and callbacks to themselves, "
            "so results.json could not say what happened; expected trainer=ddp"
        )
    require_monitored_metrics(cfg.callbacks)
    require_source(cfg.data)
    require_gpus(cfg.trainer)
    return cfg


# Trainer arguments `linreg.train` passes itself; one given with `+trainer.<key>=...` would be overridden.
TRAINER_KEYS_SET_BY_THE_RUN = {
    "max_steps": "iters=<optimizer steps>",
    "max_epochs": "iters=<optimizer steps>",
    "default_root_dir": "hydra.run.dir=<folder>",
    "logger": "logger=tensorboard, logger=[tensorboard,csv] or logger=none",
    "callbacks": "+callbacks.<name>={_target_: ...} or a file in conf/callbacks/",
}


# Trainer arguments that would make a record lie (steps that are not optimizer steps, a resumed run that differs
# from an uninterrupted one), with the values that keep the promise and what to use instead.
TRAINER_KEYS_THAT_BREAK_A_PROMISE = {
    "fast_dev_run": (
        (False, 0),
        "it trains a batch or two with logging and checkpoints off; expected iters=2 for a quick try",
    ),
    "limit_train_batches": (
        (None, 1.0),
        "it cuts epochs short, which exact resume counts on; expected iters=... or fewer rows",
    ),
    "limit_val_batches": (
        (None, 1.0),
        "the run's validation metrics are its result; expected trainer.val_check_interval=...",
    ),
    "overfit_batches": ((0, 0.0), "it trains and validates on a few training batches; expected data.batch_size=..."),
    "accumulate_grad_batches": (
        (1,),
        "an iter is one optimizer step on one batch, and resume counts on it; expected a larger data.batch_size",
    ),
    "check_val_every_n_epoch": (
        (None,),
        "on the full batch one epoch is the whole run, so validation would wait for its end; "
        "expected trainer.val_check_interval=<steps>",
    ),
    "barebones": ((False,), "it turns off the logging and checks the run's record is made from; expected logger=none"),
}


# The module whose sources are built to check them before torch's import: building one needs numpy at most.
# Any other source (a class of yours) is built, and checks its keys, with the DataModule once Lightning is in.
TORCH_FREE_SOURCES = "linreg.sources"
DATAMODULE = "linreg.data.RegressionDataModule"


def require_source(data: DictConfig) -> None:
    """Check this project's DataModule settings and build its data source once, to have it check its keys and
    data (a CSV file's form, header and cells) before torch's import; the run builds it again with its
    DataModule, from the reading made here."""
    if data.get("_target_") == DATAMODULE:  # with its constructor's defaults for what the config leaves out
        settings = {"batch_size": None, "shuffle": True, "shuffle_seed": 0, "standardize": False, "intercept": True}
        require_loader_settings(*(data.get(key, default) for key, default in settings.items()))
    source = data.get("source")
    if isinstance(source, DictConfig) and str(source.get("_target_")).startswith(TORCH_FREE_SOURCES + "."):
        build("data.source", source)


def refuse_live_text(node: object, key: str = "") -> None:
    """A resolved config holds values only: a string that would read as an interpolation (`${...}`) once more is
    refused, whatever produced it (an escaped `\\${...}` in an override or a saved config, a resolver's output)."""
    if isinstance(node, dict):
        for name, value in node.items():
            refuse_live_text(value, f"{key}.{name}" if key else str(name))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            refuse_live_text(value, f"{key}[{index}]")
    elif isinstance(node, str) and "${" in node:
        raise InvalidInput(
            f"{key}: {node!r} still reads as an interpolation after resolution; expected a plain value "
            "(overrides and run folders are data: an escaped ${...} is not resolved later)"
        )


# Resolvers that stay inside the config and the run: the time, Hydra's own settings, the run folder's name, a key
# of the config with a default (`oc.select`: conf/datamodule.yaml reads model.bias with it). Any other (oc.env,
# oc.create, oc.decode, ...) reads the environment or builds nodes: refused in overrides and saved configs, which
# are data. A plain `${key}` is not a resolver and stays allowed.
ALLOWED_RESOLVERS = ("now", "hydra", "run_name", "oc.select")
_INTERPOLATION_HEAD = re.compile(r"\$\{([^:}]*)(:?)")  # what follows `${`: a key, or a resolver's name and `:`


def refuse_outside_resolvers(node: object, key: str = "") -> None:
    """Refuse a string of `node` (a value, or a tree of them) that calls a resolver outside ALLOWED_RESOLVERS, or
    one whose name is itself built by an interpolation (`${oc.${e}:X}`)."""
    if isinstance(node, dict | DictConfig):
        items = node.items() if isinstance(node, dict) else OmegaConf.to_container(node, resolve=False).items()
        for name, value in items:
            refuse_outside_resolvers(value, f"{key}.{name}" if key else str(name))
    elif isinstance(node, list | tuple):
        for index, value in enumerate(node):
            refuse_outside_resolvers(value, f"{key}[{index}]")
    elif isinstance(node, str):
        for head, colon in _INTERPOLATION_HEAD.findall(node):
            name = head.strip()
            if "$" in name or (colon and name not in ALLOWED_RESOLVERS):
                raise InvalidInput(
                    f"{key}: {node!r} calls the resolver {name}, which reaches outside the config; expected a "
                    f"value, ${{key}}, or one of the resolvers {', '.join(ALLOWED_RESOLVERS)}"
                )


# Arguments of loggers and callbacks that name a file or folder below the run folder: names, not paths.
NAME_KEYS = ("name", "version", "sub_dir", "filename")
# Arguments that would put files elsewhere (ModelCheckpoint's dirpath, a logger's save_dir or tracking_uri):
# the run gives every logger its folder, and a checkpoint callback writes under the Trainer's, the run folder.
FOLDER_KEYS = ("dirpath", "dir", "save_dir", "root_dir", "log_dir", "tracking_uri", "artifact_location")


def refuse_paths_out_of_the_run_folder(cfg: dict[str, Any]) -> None:
    """Every file a run's loggers and callbacks write stays in the run folder: `logger.csv.name=../../x` or
    `+callbacks.x={_target_: ...ModelCheckpoint, dirpath: /elsewhere}` would write beside, or over, another
    folder's files."""
    for group in ("logger", "callbacks"):
        entries = cfg.get(group)
        for name, entry in entries.items() if isinstance(entries, dict) else ():
            if not isinstance(entry, dict):
                continue  # check() says what an entry must be
            for key in FOLDER_KEYS:
                if entry.get(key) is not None:
                    raise InvalidInput(
                        f"{group}.{name}.{key}: {entry[key]!r} would write outside the run folder; expected it left "
                        "out (the run folder, hydra.run.dir, is where everything a run writes goes)"
                    )
            for key in NAME_KEYS:
                value = entry.get(key)
                if isinstance(value, str) and (value in (".", "..") or any(sep in value for sep in ("/", "\\"))):
                    raise InvalidInput(
                        f"{group}.{name}.{key}: {value!r} leaves the run folder; expected a plain name (no / or ..), "
                        "or an empty string"
                    )


def require_monitored_metrics(callbacks: DictConfig) -> None:
    """A callback that monitors a metric the run never logs (`EarlyStopping(monitor=...)`) is said before the run,
    not as Lightning's RuntimeError at the first validation."""
    for name, entry in callbacks.items():
        monitor = entry.get("monitor")
        if monitor is not None and monitor not in MONITORABLE:
            raise InvalidInput(
                f"callbacks.{name}.monitor: {monitor!r} is not a metric the run logs; expected one of "
                f"{', '.join(MONITORABLE)}"
            )


def refuse_unread_keys(cfg: DictConfig) -> None:
    """A top-level key added with `+key=...` that no part of the run reads (`+lrr=0.1` would train at the default
    lr): refused, unless an interpolation in the config or in Hydra's own settings uses it."""
    for key in cfg:
        if key in TOP_LEVEL_KEYS or _interpolated(str(key), cfg):
            continue
        nested = [k for k, _ in dotted_keys(OmegaConf.to_container(cfg)) if k.endswith(f".{key}")]  # momentum
        nearest = nested[:1] or difflib.get_close_matches(str(key), TOP_LEVEL_KEYS, n=1, cutoff=0.6)
        expected = f"{nearest[0]}=..." if nearest else f"one of {', '.join(TOP_LEVEL_KEYS)}"
        raise InvalidInput(
            f"{key}: {cfg[key]!r} is read by nothing (+{key} added a key the run does not use); expected {expected}"
        )


def _interpolated(key: str, cfg: DictConfig) -> bool:
    """True when `${key}` (or `${key.x}`) appears in the config or in Hydra's settings of this run."""
    from hydra.core.hydra_config import HydraConfig

    texts = [OmegaConf.to_yaml(cfg)]
    if HydraConfig.initialized():
        texts.append(OmegaConf.to_yaml(HydraConfig.get()))
    return any(re.search(r"\$\{\s*" + re.escape(key) + r"\s*[.}]", text) for text in texts)
