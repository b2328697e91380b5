"""What `python scripts/train.py ...` does around a run: errors as one line, the summary, the objective.

Lightning is imported (by `linreg.train`) only once Hydra has composed the config and `linreg.config` has
checked it, so a mistyped key, config name or value fails at once, without paying for that import.
"""

from __future__ import annotations

import gc
import math
import os
import re
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.errors import (
    CompactHydraException,
    ConfigCompositionException,
    MissingConfigException,
    OverrideParseException,
)
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigAttributeError, ConfigKeyError

from linreg import record
from linreg.config import GROUPS
from linreg.distributed import refuse_ddp_in_multirun, require_processes, uses_ddp
from linreg.errors import InvalidInput, fault_line
from linreg.overrides import refuse_bad_overrides
from linreg.record import RESULTS_FILE, Status, relative_to_cwd
from linreg.resume import TrainedToItsEnd, run_config
from linreg.run_folder import discard_unused_folder
from linreg.sweep import write_tables
from linreg.sweep_continuation import continued_command, continued_sweep
from linreg.targets import freeze_allowlist


def run_app(app: Callable[[], Any], config_dir: Path | None = None) -> None:
    """Runs a `@hydra.main` app; a mistyped override or config name ends in one line and exit status 2.

    `config_dir` is the app's config folder: a mistyped key is answered with the nearest keys found there.

    Hydra prints these errors over several lines and exits with 1. Hydra raises them instead of printing
    them when HYDRA_FULL_ERROR=1, so that is set here, unless the user set it to 1 to see Hydra's own report
    (only 1 asks for it: many shells set it to 0).
    """
    freeze_allowlist()
    try:
        refuse_bad_overrides(sys.argv[1:])
        continued = continued_command(sys.argv[1:])  # -m resume=<sweep folder>: the sweep's saved command
        if continued is not None:
            refuse_bad_overrides(continued)  # what the folder holds is input too
            sys.argv[1:] = continued
    except InvalidInput as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    if os.environ.get("HYDRA_FULL_ERROR") == "1":
        app()
        return
    users_setting = os.environ.get("HYDRA_FULL_ERROR")
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        app()
    except CompactHydraException as error:  # bad overrides and missing configs, found before any job runs
        print(f"error: {hydra_error_line(error, sys.argv[1:], config_dir)}", file=sys.stderr)
        discard_unused_folder()
        sys.exit(2)
    except OSError as error:  # Hydra could not create or write the run folder
        print(f"error: {fault_line(error)}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:  # Ctrl+C before a run's record was started (during imports, say)
        print("error: interrupted by SIGINT before training started; no run was recorded", file=sys.stderr)
        discard_unused_folder()
        sys.exit(128 + signal.SIGINT)
    finally:
        if users_setting is None:
            del os.environ["HYDRA_FULL_ERROR"]
        else:
            os.environ["HYDRA_FULL_ERROR"] = users_setting


_LEXER_ERROR = re.compile(r"LexerNoViableAltException: (?P<override>.*)\n(?P<caret> *)\^")


def hydra_error_line(error: CompactHydraException, args: Sequence[str] = (), config_dir: Path | None = None) -> str:
    """One line from Hydra's message: what is wrong and what is expected instead (for an unknown key, the
    nearest keys of the config in `config_dir` that the command's `args` compose)."""
    if isinstance(error, MissingConfigException) and error.missing_cfg_file and error.options is not None:
        group, _, name = error.missing_cfg_file.rpartition("/")
        return f"{group}={name}: no such config; expected one of {', '.join(error.options)}"
    unknown = _unknown_override(error, args)
    if unknown:
        from linreg.suggest import known_keys, unknown_key_line

        key, value = unknown
        if config_dir is None:
            return f"{key}: no such key in the config; expected one of its keys (`--cfg job` lists them)"
        return unknown_key_line(key, value, known_keys(config_dir, _config_name(args), args, GROUPS))
    lexer = _LEXER_ERROR.match(str(error))
    if isinstance(error, OverrideParseException) and lexer:  # `resume=~`: a character the grammar has no rule for
        override = lexer["override"]
        column = len(lexer["caret"]) - len("LexerNoViableAltException: ")
        key, _, value = override.partition("=")
        return (
            f"{override}: Hydra's override grammar cannot read {override[column : column + 1]!r} there; expected the "
            f"value in quotes, e.g. '{key}=\"{value}\"'"
        )
    return "; ".join(line.strip().rstrip(".:") for line in str(error).splitlines() if line.strip())


def _unknown_override(error: CompactHydraException, args: Sequence[str]) -> tuple[str, str] | None:
    """The override, as typed (key, value), that set a key the config does not have: OmegaConf's error behind
    Hydra's names the first missing part of it (`full_key`)."""
    cause = error.__cause__
    if not isinstance(error, ConfigCompositionException) or not isinstance(
        cause, ConfigKeyError | ConfigAttributeError
    ):
        return None
    missing = str(cause.full_key)
    for arg in args:
        key, _, value = arg.partition("=")
        key = key.lstrip("+~")
        if key == missing or key.startswith(missing + "."):
            return key, value
    return missing, ""


def _config_name(args: Sequence[str]) -> str:
    """The primary config a command composes: `-cn name`, `--config-name=name`, or train."""
    for i, arg in enumerate(args):
        if arg in ("-cn", "--config-name") and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith("--config-name="):
            return arg.partition("=")[2]
    return "train"


def main(cfg: DictConfig) -> float:
    """One run in Hydra's folder; returns the objective to a sweeper.

    Bad input in a single run prints one line and exits with status 2. In a multirun the job records
    status failed and the sweep goes on; the summary lists it and the sweep exits non-zero at the end.
    """
    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    overrides = OmegaConf.to_container(hydra_cfg.overrides.task)  # as typed: `lr=${x}` is not resolved here
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    continued = multirun and continued_sweep(hydra_cfg) is not None  # its job folder may hold a cut attempt
    try:
        if multirun and not continued and (run_dir / RESULTS_FILE).exists():  # an earlier job of this sweep's
            print(
                f"error: job {hydra_cfg.job.override_dirname}: hydra.sweep.subdir: its folder '{run_dir}' already "
                "holds another job's results; expected a subdir unique to each job, e.g. ${hydra.job.num}",
                file=sys.stderr,
            )
            sys.exit(2)  # every later job would collide too: the sweep stops, the earlier job's files intact
        if multirun and uses_ddp(cfg.get("trainer")):
            refuse_ddp_in_multirun(hydra_cfg.launcher._target_)
        require_processes(cfg.get("trainer"))  # before Lightning waits for processes nobody will start
        composed, cfg = cfg, run_config(cfg, overrides, job_dir=run_dir if continued else None)  # before Lightning
        _import_training_once()
        from linreg.outcome import is_global_zero
        from linreg.train import train

        try:
            result = train(cfg, run_dir, overrides)
        except TrainedToItsEnd:
            if not continued:
                raise
            # cut after its last checkpoint, before its record: what it trained is there, its scores are not
            print(f"job {hydra_cfg.job.override_dirname}: cut after its last step, before its record; trained again")
            cfg = run_config(composed, overrides)
            result = train(cfg, run_dir, overrides)
    except OSError as error:  # train() has marked its record failed (or removed it)
        if not multirun:
            print(f"error: {fault_line(error)}", file=sys.stderr)
            sys.exit(1)
        print(f"error: job {hydra_cfg.job.override_dirname}: {fault_line(error)}", file=sys.stderr)
        return math.inf
    except InvalidInput as error:
        if not multirun:
            print(f"error: {error}", file=sys.stderr)
            discard_unused_folder()
            sys.exit(2)
        print(f"error: job {hydra_cfg.job.override_dirname}: {error}", file=sys.stderr)
        record.refused(run_dir, error, overrides)
        return math.inf
    if is_global_zero():
        print("\n".join(record.summary_lines(result, run_dir)))
    if result["status"] != Status.INTERRUPTED:
        return record.objective(result, cfg.objective)
    if multirun:  # the sweep stops here: its tables still list what ran (Hydra's callback will not)
        write_tables(Path(hydra_cfg.sweep.dir), cfg.objective)
        sweep_dir = relative_to_cwd(Path(hydra_cfg.sweep.dir))
        print(f"continue the sweep with: python scripts/train.py -m resume={sweep_dir}")
    sys.exit(128 + signal.Signals[result["interrupted_by"]].value)  # the shell's convention for a signal


def _import_training_once() -> None:
    """Imports `linreg.train` (Lightning) with no garbage collection while importing, then freezes what exists:
    the imports build about a million objects that live as long as the process, which every collection would
    walk again.

    Once per process: in a sweep's later job a freeze would also freeze the earlier jobs' garbage, never to be
    collected (a sweep's process grew by about 6,000 objects a job).
    """
    if "linreg.train" in sys.modules:
        return
    gc.disable()  # already off when scripts/train.py started the process; not in a joblib or submitit worker
    import linreg.train  # noqa: F401

    gc.freeze()
    gc.enable()
