"""`python scripts/train.py -m resume=<sweep folder>`: a cut sweep (SIGTERM, Ctrl-C, a lost node) continued in
place.

The command runs the sweep it was started with again, read from the folder's `multirun.yaml`, into the same
folder, with `hydra/sweeper=continuable` (`hydra_plugins.linreg_sweeper`: Hydra's basic grid sweeper, which
leaves out every job that finished: ok, stopped or diverged; their folders are not touched). Each other job
continues from its own
`checkpoints/last.ckpt` where it has one, and starts over in its folder where it has none. Any launcher works:
the jobs left to run are handed to it as a sweep of their own.

The saved overrides are input like the command line: they pass through the same checks
(`linreg.overrides.refuse_bad_overrides`) after this module has rebuilt the command.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from hydra._internal.utils import get_args_parser
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException
from yaml import YAMLError

from linreg.errors import InvalidInput
from linreg.record import FINISHED, Status, read_status

SWEEP_FILE = "multirun.yaml"  # Hydra writes it into every sweep folder as the sweep starts
DONE = (*FINISHED, Status.DIVERGED)  # a diverged job is a result: continuing would not change it
# What a continued sweep may set anew: where and how its jobs run, not what they train.
CHANGEABLE = ("hydra/launcher=", "hydra.launcher.")
# What Hydra and a continuation add to the saved overrides (the mode, where the sweep went): set anew each time.
PLACED = ("hydra.sweep.dir=", "hydra/sweeper=", "hydra.sweeper.resume=", "hydra.mode=")
_PLAIN_PATH = re.compile(r"[A-Za-z0-9._/+:-]+")


def continued_command(args: Sequence[str], config_name: str = "train") -> list[str] | None:
    """The command line that continues the sweep in `resume=<folder>` of a multirun (`-m`), or None when `args`
    continue no sweep (a single run's `resume=`, or a sweep of resumed runs, go on as before). `config_name`:
    the app's primary config, which `-cn` replaces."""
    typed = next((arg for arg in args if arg.lstrip("+~").startswith("hydra.sweeper.resume")), None)
    if typed:  # it would let a command with other overrides write job folders into an existing sweep's folder
        raise InvalidInput(
            f"{typed.partition('=')[0]}: set by -m resume=<sweep folder>, which runs that sweep's own jobs; "
            "expected python scripts/train.py -m resume=<sweep folder>"
        )
    if not any(arg in ("-m", "--multirun") for arg in args):
        return None
    folder = next((arg.partition("=")[2] for arg in args if arg.startswith("resume=")), None)
    if not folder or not (Path(folder).expanduser() / SWEEP_FILE).is_file():
        return None
    sweep_dir = Path(folder).expanduser()
    if not _PLAIN_PATH.fullmatch(str(sweep_dir)):
        raise InvalidInput(
            f"resume: '{sweep_dir}' has characters Hydra's override grammar would read; expected the sweep folder "
            "by a plain path (letters, digits, . _ - / + :)"
        )
    changed = [arg for arg in args if "=" in arg and not arg.startswith(("-", "resume=", *CHANGEABLE))]
    if changed:
        raise InvalidInput(
            f"resume: a continued sweep runs the jobs it was started with; expected only resume=<sweep folder> and "
            f"where they run (hydra/launcher=..., hydra.launcher.*), not {changed[0]}"
        )
    saved = _saved_sweep(sweep_dir)
    refuse_links(sweep_dir)
    flags = [arg for arg in args if "=" not in arg or arg.startswith("-")]  # -m, -cn <name>, --config-dir=...
    refuse_other_configs(sweep_dir, saved, flags, config_name)
    launcher = [arg for arg in args if arg.startswith(CHANGEABLE)]
    anew = tuple(arg.partition("=")[0] + "=" for arg in launcher)  # the user's setting replaces the saved one,
    if any(arg.startswith("hydra/launcher=") for arg in launcher):  # and another launcher the old one's settings
        anew += ("hydra.launcher.",)
    kept_hydra = [o for o in saved.hydra if not o.startswith((*PLACED, *anew))]
    placed = [f"hydra.sweep.dir={sweep_dir}", "hydra/sweeper=continuable", f"hydra.sweeper.resume={sweep_dir}"]
    return [*flags, *saved.task, *kept_hydra, *launcher, *placed]


def refuse_other_configs(sweep_dir: Path, saved: SavedSweep, flags: Sequence[str], config_name: str) -> None:
    """The jobs left must compose from the configs the finished ones did: the same primary config (`-cn`) and
    extra config folder (`--config-dir`). The command must give them again: a folder's record never names a
    folder of config to load (it would be loaded as trusted code)."""
    started_name, started_dirs = saved.config_name, saved.config_dirs
    given = get_args_parser().parse_known_args(list(flags))[0]  # Hydra's own reading of its flags
    config_name = given.config_name or config_name
    dirs = [os.path.abspath(os.path.expanduser(given.config_dir))] if given.config_dir else []
    same_dirs = [os.path.realpath(d) for d in started_dirs] == [os.path.realpath(d) for d in dirs]
    if (started_name is None or started_name == config_name) and same_dirs:
        return
    again = ([f"-cn {started_name}"] if started_name is not None else []) + [f"--config-dir {d}" for d in started_dirs]
    raise InvalidInput(
        f"resume: the sweep in '{sweep_dir}' composed its jobs from {' '.join(again) or 'the default config'}, "
        f"this command from {' '.join([f'-cn {config_name}', *(f'--config-dir {d}' for d in dirs)])}; expected "
        f"the same, for the jobs left to train what the finished ones did: python scripts/train.py "
        f"{' '.join(again)} -m resume={sweep_dir}"
    )


class SavedSweep(NamedTuple):
    """What a sweep folder's `multirun.yaml` says the sweep was started with."""

    task: list[str]  # the overrides of what it trains
    hydra: list[str]  # those of Hydra's settings
    config_name: str | None  # its primary config (`-cn`)
    config_dirs: list[str]  # its extra config folders (`--config-dir`)


def _saved_sweep(sweep_dir: Path) -> SavedSweep:
    """What the sweep in `sweep_dir` was started with, read as data."""
    saved = sweep_dir / SWEEP_FILE
    try:
        config = OmegaConf.load(saved)
        task = OmegaConf.select(config, "hydra.overrides.task")
        hydra = OmegaConf.select(config, "hydra.overrides.hydra")
        sweeper = str(OmegaConf.select(config, "hydra.sweeper._target_", default=""))
        config_name = OmegaConf.select(config, "hydra.job.config_name", default=None)
        sources = OmegaConf.select(config, "hydra.runtime.config_sources", default=None)
        config_dirs = sorted(
            str(source.get("path"))
            for source in (sources if isinstance(sources, ListConfig) else [])
            if isinstance(source, DictConfig) and source.get("provider") == "command-line"
        )
    except (OSError, ValueError, YAMLError, OmegaConfBaseException) as error:
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise InvalidInput(
            f"resume: '{saved}' is not a readable sweep record ({reason}); expected the file Hydra wrote"
        ) from None
    # as written: `${oc.env:...}` in a saved override is text, judged by the command line's checks, never resolved
    lists = [OmegaConf.to_container(x, resolve=False) if isinstance(x, ListConfig) else None for x in (task, hydra)]
    if not all(isinstance(x, list) and all(isinstance(o, str) for o in x) for x in lists):
        raise InvalidInput(f"resume: '{saved}' holds no lists of overrides; expected the file Hydra wrote")
    flag = next((o for x in lists for o in x if o.startswith("-") or "=" not in o), None)
    if flag is not None:  # `--config-dir=<folder>` would load that folder's files as trusted config
        raise InvalidInput(
            f"resume: '{saved}' holds {flag!r}, which is not a key=value override; expected the file Hydra wrote"
        )
    if "optuna" in sweeper.lower():
        raise InvalidInput(
            f"resume: '{sweep_dir}' is an Optuna search, whose study lived in the memory of the process that was "
            "cut, so it cannot be continued; expected a grid sweep's folder (start the search again instead)"
        )
    return SavedSweep(lists[0], lists[1], None if config_name is None else str(config_name), config_dirs)


def refuse_links(sweep_dir: Path) -> None:
    """A continued sweep writes into its job folders (Hydra's `.hydra/` and log, the record, the checkpoint, the
    events): a symbolic link, or a file with another hard link, would carry those writes to another file. A
    sweep folder this project wrote holds neither."""
    for path in sweep_dir.rglob("*"):
        status = path.lstat()
        if path.is_symlink() or (not path.is_dir() and status.st_nlink > 1):
            kind = "a symbolic link" if path.is_symlink() else "a file with another hard link"
            raise InvalidInput(
                f"resume: '{path}' is {kind}; expected a sweep folder as a sweep wrote it (its jobs' files would "
                "be written through it)"
            )


def finished_jobs(sweep_dir: Path) -> set[frozenset[str]]:
    """The overrides of each job in `sweep_dir` that ended (ok, stopped or diverged), from its `.hydra/`."""
    finished = set()
    for job_dir in {path.parent.parent for path in sweep_dir.rglob(".hydra/overrides.yaml")}:
        if read_status(job_dir) not in DONE:
            continue
        try:
            overrides = OmegaConf.load(job_dir / ".hydra" / "overrides.yaml")
        except (OSError, ValueError, YAMLError, OmegaConfBaseException):
            continue  # unreadable: the job runs again, in its folder
        if isinstance(overrides, ListConfig):  # compared as written, never resolved
            finished.add(frozenset(str(o) for o in OmegaConf.to_container(overrides, resolve=False)))
    return finished


def continued_sweep(hydra_cfg: DictConfig) -> Path | None:
    """The sweep folder this multirun continues (`hydra.sweeper.resume`), or None."""
    folder = OmegaConf.select(hydra_cfg, "sweeper.resume", default=None)
    return Path(folder) if folder else None


def require_sweep_folder(folder: Path, sweep_dir: Path) -> None:
    """`hydra.sweeper.resume` must name this sweep's own folder, one that Hydra's sweep record is in."""
    if os.path.realpath(folder) != os.path.realpath(sweep_dir) or not (folder / SWEEP_FILE).is_file():
        raise InvalidInput(
            f"hydra.sweeper.resume: '{folder}' is not the folder of this sweep ('{sweep_dir}'); expected "
            "python scripts/train.py -m resume=<sweep folder>, which sets both"
        )
