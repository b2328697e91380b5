"""The command line's overrides are data: what they may set is checked as typed, before Hydra composes anything.

Hydra acts on some `hydra.*` settings itself, before and around the job (it applies `hydra.job.env_set` to the
environment, configures logging from `hydra.job_logging`, builds `hydra.callbacks`, writes its files into
`hydra.output_subdir`), so those are allowed by name: where runs go, the launcher's and sweeper's own settings,
verbosity, and the choice of launcher, sweeper and logging configs (files, trusted like `conf/`). Every
`_target_` typed is checked down to the class it imports as; a resolver that reaches outside the config, or an
escaped interpolation that a later resolution would bring to life, is refused.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import PurePath

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep

from linreg.config import GROUPS, refuse_outside_resolvers
from linreg.errors import InvalidInput
from linreg.targets import allowed_class, targets

# The hydra.* settings a command line may change (a key, or a prefix ending in "."), and the config groups of
# Hydra's it may choose from (`hydra/launcher=joblib`).
HYDRA_ALLOWED = (
    "hydra.run.dir", "hydra.sweep.dir", "hydra.sweep.subdir", "hydra.verbose", "hydra.launcher.", "hydra.sweeper.",
    "hydra/launcher", "hydra/sweeper", "hydra/job_logging", "hydra/hydra_logging",
)  # fmt: skip
# Launcher and sweeper settings that run commands, import code or write outside the run folders.
HYDRA_REFUSED = {
    "hydra.launcher.setup": "its lines run as shell commands in each SLURM job",
    "hydra.launcher.srun_args": "its words are given to srun as they are",
    "hydra.launcher.additional_parameters": "its entries become #SBATCH lines",
    "hydra.launcher.submitit_folder": "submitit writes its logs and pickles there, outside the sweep folder",
    "hydra.launcher.temp_folder": "joblib writes its temporary files there",
    "hydra.sweeper.storage": "Optuna opens or creates that database file",
    "hydra.sweeper.custom_search_space": "Optuna imports and calls the function it names",
}
# Lightning starts each further DDP process by re-running the command line with these added (its
# _hydra_subprocess_cmd): a job name for the process's log file in the run folder, and no second config save.
LIGHTNINGS_DDP_SETTINGS = {
    "hydra.job.name": lambda value: isinstance(value, str) and _PLAIN_NAME.fullmatch(value) is not None,
    "hydra.output_subdir": lambda value: value is None,
}
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*")  # a file name: no folder, not . or ..
# What a sweep job's sub-folder may interpolate: Hydra's names for the job, never a value of the config.
_JOB_NAMES = re.compile(r"\$\{hydra\.job\.(num|id|override_dirname)\}")


def refuse_bad_overrides(args: Sequence[str]) -> None:
    """One line for the first override that may not be given, before Hydra composes or writes anything.

    `linreg.config.check` sees the run's composed config later; this sees what only the command line holds:
    `hydra.*` settings, a config group set to null (which Hydra would answer with a traceback), targets
    that Hydra itself would build. An override Hydra cannot parse is left to its own one-line report.
    """
    refuse_config_name_out_of_the_config_dirs(args)
    multirun = any(arg in ("-m", "--multirun") for arg in args)
    parser = OverridesParser.create()
    for arg in args:
        if any(ord(character) < 32 or ord(character) == 127 for character in arg):
            raise InvalidInput(
                f"{arg.partition('=')[0]}: the value holds a control character (a new line, say); expected one line "
                "(a launcher writes values into the job scripts it runs)"
            )
        if arg.startswith("-") or "=" not in arg:  # -m, -cn train, --cfg job
            continue
        try:
            (override,) = parser.parse_overrides([arg])
        except Exception:
            continue
        key, value = override.get_key_element().lstrip("+~"), override.value()
        typed = arg.partition("=")[2]  # the value as written, before Hydra's parser reads it
        if "\\${" in typed:
            raise InvalidInput(
                f"{key}: {typed!r} holds an escaped interpolation; expected a plain value "
                "(overrides are data: nothing in them is resolved later)"
            )
        refuse_outside_resolvers(typed, key)
        if key in GROUPS and value is None:
            hint = " (logger=none for no logger)" if key == "logger" else ""
            raise InvalidInput(f"{key}=null: not a config; expected one of the configs in conf/{key}/{hint}")
        if key in (*GROUPS, "hparams_search") or "/" in key:  # a config group: its choice names a file
            for choice in _choices(value):
                refuse_path_out_of_the_config_dirs(key, choice)
        for item in value.list if isinstance(value, ChoiceSweep) else [value]:
            where = key
            if where.endswith("_target_"):
                item, where = {"_target_": item}, where.removesuffix("_target_").rstrip(".")
            for path, target in targets(item, where):
                allowed_class(path, target)
        if key.startswith(("hydra.", "hydra/")):
            refuse_hydra_setting(key, value)
        elif multirun and ".." in PurePath(typed).parts:
            # a sweep's job folders are named after the overrides as typed (${hydra.job.override_dirname}), and
            # Hydra writes into a job's folder before any check of the job can run
            raise InvalidInput(
                f"{key}: {typed!r} holds .. and would put its job's folder outside its own place in "
                "the sweep folder (job folders are named after the overrides); expected a value without .. "
                "(an absolute path, say)"
            )


def _choices(value: object) -> list[object]:
    """The option names a group override gives: one, a list (`logger=[tensorboard,csv]`) or a sweep's."""
    items = value.list if isinstance(value, ChoiceSweep) else [value]
    return [name for item in items for name in (item if isinstance(item, list) else [item])]


def refuse_path_out_of_the_config_dirs(key: str, choice: object) -> None:
    """A config group's option, or a primary config's name, is a file of the config folders (conf/, a
    --config-dir): a name, never a path that climbs out of them to load someone else's file as trusted config."""
    path = PurePath(str(choice))
    if path.is_absolute() or ".." in path.parts:
        folder = "conf/" if key.startswith("-") else f"conf/{key}/"
        raise InvalidInput(
            f"{key}: {str(choice)!r} names a file outside the config folders; expected the name of a config in "
            f"{folder} (your own configs: --config-dir)"
        )


def refuse_config_name_out_of_the_config_dirs(args: Sequence[str]) -> None:
    for index, flag in enumerate(args):
        if flag.startswith("--config-name="):
            refuse_path_out_of_the_config_dirs("--config-name", flag.partition("=")[2])
        elif flag in ("-cn", "--config-name") and index + 1 < len(args):
            refuse_path_out_of_the_config_dirs("--config-name", args[index + 1])


def refuse_hydra_setting(key: str, value: object) -> None:
    """A `hydra.*` override outside HYDRA_ALLOWED, or one of HYDRA_REFUSED, or a sweep job's sub-folder that
    would leave the sweep folder."""
    if key in LIGHTNINGS_DDP_SETTINGS:
        if not LIGHTNINGS_DDP_SETTINGS[key](value):
            raise InvalidInput(
                f"{key}: {value!r} is not allowed; expected what Lightning's DDP processes are started with "
                "(a plain job name, hydra.output_subdir=null)"
            )
        return
    refused = next((why for name, why in HYDRA_REFUSED.items() if key == name or key.startswith(name + ".")), None)
    if refused or not any(key == name or (name.endswith(".") and key.startswith(name)) for name in HYDRA_ALLOWED):
        why = refused or (
            "Hydra acts on it itself (the environment, logging, callbacks, its own files, the search path)"
        )
        raise InvalidInput(
            f"{key}: may not be set from the command line: {why}; expected hydra.run.dir, hydra.sweep.dir, "
            "hydra.sweep.subdir, hydra.verbose, hydra.launcher.* or hydra.sweeper.* settings, a hydra/launcher, "
            "hydra/sweeper or hydra/job_logging choice, or a config file (--config-dir)"
        )
    if key == "hydra.sweep.subdir":
        for item in value.list if isinstance(value, ChoiceSweep) else [value]:
            refuse_subdir_out_of_the_sweep(str(item))


def refuse_subdir_out_of_the_sweep(subdir: str) -> None:
    """A sweep job's folder stays inside the sweep folder: a relative path without `..`, interpolating only
    Hydra's names for the job."""
    plain = _JOB_NAMES.sub("x", subdir)
    path = PurePath(plain)
    if "${" in plain or path.is_absolute() or ".." in path.parts or not plain.strip():
        raise InvalidInput(
            f"hydra.sweep.subdir: {subdir!r} could leave the sweep folder; expected a relative path without .., "
            "e.g. ${hydra.job.num} or ${hydra.job.override_dirname}"
        )
