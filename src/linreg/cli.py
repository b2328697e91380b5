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
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep
from hydra.errors import CompactHydraException, MissingConfigException, OverrideParseException
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from linreg.config import GROUPS, run_config
from linreg.distributed import refuse_ddp_in_multirun, require_processes, uses_ddp
from linreg.errors import InvalidInput, fault_line
from linreg.results import FINISHED, RESULTS_FILE, split_overrides, write_results
from linreg.run_folder import discard_unused_folder
from linreg.sweep import write_tables
from linreg.targets import allowed_class, targets


def run_app(app: Callable[[], Any], config_dir: Path | None = None) -> None:
    """Runs a `@hydra.main` app; a mistyped override or config name ends in one line and exit status 2.

    `config_dir` is the app's config folder: a mistyped key is answered with the nearest keys found there.

    Hydra prints these errors over several lines and exits with 1. Hydra raises them instead of printing
    them when HYDRA_FULL_ERROR=1, so that is set here, unless the user set it to see Hydra's own report.
    """
    try:
        refuse_bad_overrides(sys.argv[1:])
    except InvalidInput as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    if os.environ.get("HYDRA_FULL_ERROR") is not None:
        app()
        return
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
        del os.environ["HYDRA_FULL_ERROR"]


def refuse_bad_overrides(args: Sequence[str]) -> None:
    """Checks the command line before Hydra composes anything: each `_target_` typed in an override, and
    a config group set to null (which Hydra would answer with a traceback).

    `linreg.config.check` sees the run's config later; this sees `hydra.*` overrides too, such as a callback
    that Hydra itself would build before any job starts, so their targets are checked down to the class they
    import as. An override Hydra cannot parse is left to its own one-line report (`run_app`).
    """
    parser = OverridesParser.create()
    for arg in args:
        if arg.startswith("-") or "=" not in arg:  # -m, -cn train, --cfg job
            continue
        try:
            (override,) = parser.parse_overrides([arg])
        except Exception:
            continue
        key, value = override.get_key_element().lstrip("+~"), override.value()
        if key in GROUPS and value is None:
            hint = " (logger=none for no logger)" if key == "logger" else ""
            raise InvalidInput(f"{key}=null: not a config; expected one of the configs in conf/{key}/{hint}")
        for item in value.list if isinstance(value, ChoiceSweep) else [value]:
            where = key
            if where.endswith("_target_"):
                item, where = {"_target_": item}, where.removesuffix("_target_").rstrip(".")
            for path, target in targets(item, where):
                allowed_class(path, target)


_LEXER_ERROR = re.compile(r"LexerNoViableAltException: (?P<override>.*)\n(?P<caret> *)\^")
_UNKNOWN_KEY = re.compile(r"Could not override '(?P<key>[^']+)'\.\nTo append to your config use \+(?P<override>\S+)")


def hydra_error_line(error: CompactHydraException, args: Sequence[str] = (), config_dir: Path | None = None) -> str:
    """One line from Hydra's message: what is wrong and what is expected instead (for an unknown key, the
    nearest keys of the config in `config_dir` that the command's `args` compose)."""
    if isinstance(error, MissingConfigException) and error.missing_cfg_file and error.options is not None:
        group, _, name = error.missing_cfg_file.rpartition("/")
        return f"{group}={name}: no such config; expected one of {', '.join(error.options)}"
    unknown = _UNKNOWN_KEY.match(str(error))
    if unknown:
        from linreg.suggest import known_keys, unknown_key_line

        key, value = unknown["key"], unknown["override"].partition("=")[2]  # Hydra's: a sweep's first value
        typed = [arg.partition("=")[2] for arg in args if arg.partition("=")[0].lstrip("+~") == key]
        value = typed[0] if typed else value
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
    status "failed" and the sweep goes on; the summary lists it and the sweep exits non-zero at the end.
    """
    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    overrides = OmegaConf.to_container(hydra_cfg.overrides.task)  # as typed: `lr=${x}` is not resolved here
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    try:
        if multirun and (run_dir / RESULTS_FILE).exists():  # written by an earlier job of this sweep
            print(
                f"error: job {hydra_cfg.job.override_dirname}: hydra.sweep.subdir: its folder '{run_dir}' already "
                "holds another job's results; expected a subdir unique to each job, e.g. ${hydra.job.num}",
                file=sys.stderr,
            )
            sys.exit(2)  # every later job would collide too: the sweep stops, the earlier job's files intact
        if multirun and uses_ddp(cfg.get("trainer")):
            refuse_ddp_in_multirun(hydra_cfg.launcher._target_)
        require_processes(cfg.get("trainer"))  # before Lightning waits for processes nobody will start
        cfg = run_config(cfg, overrides)  # before Lightning's import: a bad value fails at once
        _import_training_once()
        from linreg.train import is_global_zero, train

        record = train(cfg, run_dir, overrides)
    except OSError as error:  # train() has marked its results.json "failed" (or removed it)
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
        write_results(run_dir, {"status": "failed", "error": str(error), "overrides": split_overrides(overrides)})
        return math.inf
    if is_global_zero():
        print("\n".join(summary_lines(record, run_dir)))
    if record["status"] == "interrupted":
        if multirun:  # the sweep stops here: its tables still list what ran (Hydra's callback will not)
            write_tables(Path(hydra_cfg.sweep.dir), cfg.objective)
        sys.exit(128 + signal.Signals[record["interrupted_by"]].value)  # the shell's convention for a signal
    return objective(record, cfg.objective)


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


def objective(record: dict[str, Any], name: str) -> float:
    """The number a sweeper minimises: +inf for a run that diverged or failed, so a search moves on."""
    value = record.get(name)
    return float(value) if record.get("status") in FINISHED and value is not None else math.inf


def summary_lines(record: dict[str, Any], run_dir: Path) -> list[str]:
    """What the terminal shows at the end: the notebook's f(5) lines (none without a test split), a linear
    model's w and b in the data's units, the loss as trained (standardized units if so), the metrics there are."""
    lines = []
    if record["test_inputs"]:
        x = record["test_inputs"][0]
        label = f"{x[0]:g}" if len(x) == 1 else "[" + ", ".join(f"{v:g}" for v in x) + "]"
        lines += [
            f"Prediction before training: f({label}) = {_fmt(record['predictions_before'][0])}",
            f"Prediction after training: f({label}) = {_fmt(record['predictions'][0])}",
        ]
    learned = [f"{short} = {_fmt(record[key])}" for key, short in (("weight", "w"), ("bias", "b")) if key in record]
    if learned:  # a linear model's learned parameters; other models have none worth printing
        lines.append(", ".join(learned))
    if record["status"] == "interrupted":
        lines.append(
            f"interrupted by {record['interrupted_by']} at step {record['steps']} of {record['iters']}; "
            f"continue with: python scripts/train.py resume={_relative_to_cwd(run_dir)}"
        )
    elif record["status"] == "diverged":
        lines.append(
            f"diverged at step {record['diverged_at_step']}: the loss became {record['train_loss']}; {_hint(record)}"
        )
    else:
        if record["status"] == "stopped":
            lines.append(
                f"stopped by {record['stopped_by']} at step {record['steps']} of {record['iters']}: "
                f"{record['stop_reason']}"
            )
        units = " (standardized)" if record.get("standardize") else ""
        metrics = [f"final train loss{units} {_metric(record['train_loss'], '.8f')}"]
        metrics += [f"val mse {_metric(record['val_mse'], '.8f')}"] if "val_mse" in record else []
        metrics += [f"val r2 {_metric(record['val_r2'], '.4f')}"] if "val_r2" in record else []
        lines.append(f"{', '.join(metrics)} after {record['steps']} steps ({record['wall_s']:.2f} s)")
        if "test_mse" in record:  # absent with test_fraction=0
            lines.append(
                f"test mse {_metric(record['test_mse'], '.8f')}, test mae {_metric(record['test_mae'], '.8f')}, "
                f"test r2 {_metric(record['test_r2'], '.4f')} (the test split, scored once)"
            )
        lines.append(_against_optimum(record))
    lines.append(f"run folder: {_relative_to_cwd(run_dir)}")
    return lines


def _against_optimum(record: dict[str, Any]) -> str:
    """The run beside the best possible linear fit of its training data (a baseline, for other models)."""
    line = (
        f"train mse {_metric(record['train_mse'], '.3g')} vs the least-squares optimum's "
        f"{_metric(record['optimum_mse'], '.3g')} (excess {_metric(record['excess_mse'], '.3g')}"
    )
    if record.get("parameter_distance") is None:
        return line + "; the linear optimum is this model's baseline)"
    trained = "standardized " if record.get("standardize") else ""  # the distance is measured where it trained
    return line + f", distance of {trained}w, b from it {record['parameter_distance']:.3g})"


def _hint(record: dict[str, Any]) -> str:
    """What to try after a divergence: below the data's stability limit, when the lr was above it."""
    limit = record.get("stability_limit")
    if record.get("above_stability_limit") and limit:
        from linreg.least_squares import limit_line  # after training: numpy is loaded by then

        return f"{limit_line(record['lr'], limit, record.get('standardize', False))}; try an lr below it"
    return f"try a smaller lr than {record['lr']}"


def _metric(value: float | None, spec: str) -> str:
    """n/a where a metric does not exist: R2 of one sample, the loss of a run stopped before its first step."""
    return "n/a" if value is None else format(value, spec)


def _fmt(value: Any) -> str:
    if isinstance(value, list) and len(value) == 1:  # one output, one feature: print a number
        return _fmt(value[0])
    if isinstance(value, list):
        return "[" + ", ".join(_fmt(item) for item in value) + "]"
    if value is None:
        return "nan"
    return f"{value:.3f}" if abs(value) < 1e6 else f"{value:.3g}"  # a diverged run's 1.83e+20, not 21 digits


def _relative_to_cwd(path: Path) -> Path:
    """The path as the user would type it: relative when it is below the working directory."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return path
