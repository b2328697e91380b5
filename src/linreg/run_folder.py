"""A run's folder: its name (`${run_name:}`), and no run writing into another's: a run or sweep folder that
already holds files is refused.

Hydra creates the folder and writes `.hydra/` and a log file into it before the job starts, so the check is a
Hydra callback that runs first (`on_run_start`, `on_multirun_start`, configured in `conf/train.yaml`). The
folder is claimed by creating, exclusively, the first thing Hydra would write into it, so two runs started
at once with the same folder cannot both pass.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from linreg.distributed import launch_time
from linreg.errors import InvalidInput, fault_line
from linreg.record import RESULTS_FILE
from linreg.sweep_continuation import SWEEP_FILE, continued_sweep, require_sweep_folder

MAX_NAME_OVERRIDES = 120  # characters of the overrides in a run or job folder's name (file names end at 255)

# Set by Lightning (LOCAL_RANK), torchrun (RANK) and SLURM (SLURM_PROCID) in every process of a
# distributed run; only the first process claims the folder, the others join it.
RANK_VARIABLES = ("LOCAL_RANK", "RANK", "SLURM_PROCID")


@dataclass(frozen=True)
class Claim:
    """A folder this process claimed, and what it made there: a refused command removes that and nothing else."""

    folder: Path
    made: Path | None  # the outermost folder the claim created (the folder itself or a parent); None: it existed
    entries_before: frozenset[str]  # what the folder held when claimed (log files of other ranks, say)


_claimed: list[Claim] = []  # the folders this process claimed, while they may still be given back


class FreshFolders(Callback):
    """Refuses `hydra.run.dir` or `hydra.sweep.dir` when it already holds files: one line, exit status 2.

    Hydra turns an exception raised in a callback into a warning and goes on, so the refusal exits here.
    """

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        folder = Path(config.hydra.run.dir)
        if not first_process():
            # The other ranks of a torchrun or srun launch join rank 0's folder: they must not write Hydra's
            # files into it before rank 0 has claimed it (Lightning's own DDP ranks are started that way too).
            with read_write(config), open_dict(config):
                config.hydra.output_subdir = None
            self._join_or_exit(folder)
            return
        self._claim_or_exit(folder, "hydra.run.dir", Path(".hydra"))
        if launch_id():
            (folder / ".hydra" / LAUNCH_FILE).write_text(launch_id())

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        continued = continued_sweep(config.hydra)
        if continued is None:
            self._claim_or_exit(Path(config.hydra.sweep.dir), "hydra.sweep.dir", Path(SWEEP_FILE))
            return
        try:  # the sweep's own folder, continued in place: its finished jobs are left out, not overwritten
            require_sweep_folder(continued, Path(config.hydra.sweep.dir))
        except InvalidInput as error:
            print(f"error: {error}", file=sys.stderr)
            sys.exit(2)

    @staticmethod
    def _join_or_exit(folder: Path) -> None:
        """Wait until rank 0 of this launch has claimed the folder; if it refused it, stop too (not hang)."""
        if not launch_id():
            return  # a rank Lightning started: its parent claimed the folder before starting it
        marker, deadline = folder / ".hydra" / LAUNCH_FILE, time.monotonic() + JOIN_TIMEOUT_S
        while not (marker.is_file() and marker.read_text() == launch_id()):
            if time.monotonic() > deadline:
                sys.exit(2)  # rank 0 refused the folder and said why; this rank has nothing to add
            time.sleep(0.1)

    @staticmethod
    def _claim_or_exit(folder: Path, key: str, first_entry: Path) -> None:
        if not first_process():
            return
        try:
            _claimed.append(claim(folder, key, first_entry))
        except InvalidInput as error:
            print(f"error: {error}", file=sys.stderr)
            sys.exit(2)
        except OSError as error:  # a read-only place, a full disk
            print(f"error: {fault_line(error)}", file=sys.stderr)
            sys.exit(1)


LAUNCH_FILE = "launch"  # in `.hydra/`: which torchrun or srun launch claimed the folder
JOIN_TIMEOUT_S = 120  # how long the other ranks wait for rank 0's claim


def launch_id() -> str:
    """What the processes of one torchrun or srun launch share, and no other launch has; "" otherwise."""
    if "TORCHELASTIC_RUN_ID" in os.environ:
        return f"torchrun {os.environ['TORCHELASTIC_RUN_ID']}"
    if "SLURM_STEP_ID" in os.environ:
        return f"slurm {os.environ.get('SLURM_JOB_ID')}.{os.environ['SLURM_STEP_ID']}"
    return ""


def first_process() -> bool:
    """The process that claims the run folder: rank 0 of a launch by Lightning, torchrun or srun."""
    return all(os.environ.get(name, "0") == "0" for name in RANK_VARIABLES)


def claim(folder: Path, key: str, first_entry: Path) -> Claim:
    """Make `folder` this run's, or raise: it must be new or hold only log files, and `first_entry` not yet made
    by another command."""
    refusal = InvalidInput(
        f"{key}: '{folder}' already holds files (another run's?); expected a new or empty folder, so that no "
        "run writes into another's"
    )
    if folder.exists() and not folder.is_dir():
        raise InvalidInput(f"{key}: '{folder}' is a file, not a folder; expected a new or empty folder")
    folder = Path(os.path.realpath(folder))  # `new/../old` is old: what the claim made is judged on the real path
    missing = [path for path in (folder, *folder.parents) if not path.exists()]
    folder.mkdir(parents=True, exist_ok=True)
    # Log files may be there already: other ranks of the same launch open theirs as they start.
    entries = frozenset(entry.name for entry in folder.iterdir())
    if any(not name.endswith(".log") for name in entries):
        raise refusal
    try:
        if first_entry.suffix:
            os.close(os.open(folder / first_entry, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
        else:
            (folder / first_entry).mkdir()
    except FileExistsError:
        raise refusal from None
    return Claim(folder, missing[-1] if missing else None, entries)


def discard_unused_folder() -> None:
    """Remove what this process made for a run or sweep refused before it recorded anything: a refused command
    leaves nothing behind in outputs/ (Hydra had already written `.hydra/` and a log file there).

    Only what the claim made goes: the folder and the parents it created when they hold no results.json; in a
    folder that was there before, only the entries that were not. Nothing the user had is removed.
    """
    for claimed in _claimed:
        folder = claimed.folder
        if not folder.is_dir() or any(folder.rglob(RESULTS_FILE)):
            continue
        if claimed.made is None:
            for entry in folder.iterdir():
                if entry.name in claimed.entries_before:
                    continue
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()
            continue
        shutil.rmtree(folder, ignore_errors=True)
        for parent in folder.parents:  # the date folder, if the claim made it and nothing else is in it now
            if parent == claimed.made.parent:
                break
            with contextlib.suppress(OSError):
                parent.rmdir()  # only if empty
    _claimed.clear()


def run_name(_root_: DictConfig) -> str:
    """`${run_name:}` in `hydra.run.dir`: `<date>/<time>_<overrides>`, the same in every process of one run,
    readable in TensorBoard's run list (`..._iters-500_lr-0.1`).

    Under srun the tasks of one step share its job and step ids: `<date>/slurm-<job>.<step>` (the job's
    start day from squeue), the names SLURM users look for. Otherwise the launch time, rank 0's under torchrun.
    The overrides (the same command line in every process) follow, one folder level.
    """
    environ = os.environ
    if "SLURM_STEP_ID" in environ and int(environ.get("SLURM_NTASKS", "1")) > 1:
        name = f"{_slurm_job_start().strftime('%Y-%m-%d')}/slurm-{environ['SLURM_JOB_ID']}.{environ['SLURM_STEP_ID']}"
    else:
        name = launch_time().strftime("%Y-%m-%d/%H-%M-%S.%f")
    readable = readable_overrides(_overrides(_root_))
    return f"{name}_{readable}" if readable else name


def job_name(_root_: DictConfig) -> str:
    """`${job_name:}` in `hydra.sweep.subdir`: a sweep job's folder, `iters=500,lr=0.01`, as Hydra's
    `override_dirname` names it, but with long values shortened (`readable_overrides`) and no `/` (a CSV's path
    would make nested folders)."""
    return readable_overrides(_overrides(_root_), assign="=", separator=",")


def job_number(number: int, total: int) -> str:
    """`${job_number:${hydra.job.num},<jobs>}`: the job's number zero-padded, so that folders sort (`02_`, `10_`)."""
    return f"{int(number):0{len(str(max(int(total) - 1, 0)))}d}"


def readable_overrides(overrides: list[str], assign: str = "-", separator: str = "_") -> str:
    """The overrides as a file name a person reads: every key the user set, sorted, with its value shortened:
    a number with more than 4 significant digits to 4 (`lr-0.15`, not `lr-0.15000000000000002`), a path to
    its last part, `resume=<folder>` to `continues-<folder's name>`; only characters that a shell and Hydra's
    override grammar read as text, so the folder can be typed unquoted in `resume=<run folder>`.

    At most `MAX_NAME_OVERRIDES` characters: values are cut shorter and shorter, then keys to their last part
    (`path` for `data.source.path`), never a key dropped, and a digest of the whole command is added so that
    two commands cut alike keep different names.
    """
    keep = re.compile(rf"[^A-Za-z0-9._{re.escape(assign)}-]+")
    items = []
    for override in sorted(overrides, key=lambda o: (not o.startswith("resume="), o.lstrip("+~"))):
        key, _, value = override.partition("=")
        key = keep.sub("", key)
        if key == "resume":  # what the run continues comes first
            key, value = "continues", PurePath(value.rstrip("/")).name
        items.append((key, keep.sub("", _short_value(value))))
    name = separator.join(f"{key}{assign}{value}" for key, value in items)
    if len(name) <= MAX_NAME_OVERRIDES:
        return name
    digest = hashlib.sha256("\0".join(overrides).encode()).hexdigest()[:8]
    room = MAX_NAME_OVERRIDES - len(digest) - len(separator)
    last_parts = [(key.rpartition(".")[2], value) for key, value in items]  # data.source.path: path
    for keys, floor, numbers_too in (
        (items, 4, False),
        (last_parts, 4, False),
        (last_parts, 1, False),
        (last_parts, 1, True),
    ):
        name = _cut_to_fit(keys, room, floor, numbers_too, assign, separator)
        if len(name) <= room:
            return f"{name}{separator}{digest}"
    return f"{name[:room]}{separator}{digest}"  # more keys than a name holds


def _cut_to_fit(
    items: list[tuple[str, str]], room: int, floor: int, numbers_too: bool, assign: str, separator: str
) -> str:
    """The longest value cut by a character at a time, until the name fits `room` or no value is above `floor`.
    Numbers (what sweeps vary) are cut only when `numbers_too`: a path or a name goes first."""
    values = [value for _, value in items]
    cuttable = [i for i, value in enumerate(values) if numbers_too or not _NUMBER.fullmatch(value)]
    while True:
        name = separator.join(f"{key}{assign}{value}" for (key, _), value in zip(items, values, strict=True))
        longest = max(cuttable, key=lambda i: len(values[i]), default=None)
        if len(name) <= room or longest is None or len(values[longest]) <= floor:
            return name
        values[longest] = values[longest][:-1]


_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def _short_value(value: str) -> str:
    """A number with more than 4 significant digits rounded to 4 (an integer as it is); a path's last part."""
    if re.fullmatch(r"[+-]?\d+", value):
        return value
    try:
        rounded = f"{float(value):.4g}"
    except ValueError:
        return PurePath(value.rstrip("/")).name if "/" in value else value
    return rounded if float(rounded) != float(value) else value  # as typed where 4 digits hold it all: lr=1.0


def _overrides(root: DictConfig) -> list[str]:
    """The command line's overrides as typed (`lr=${nosuch}` is text here, not resolved), less the excluded."""
    overrides = OmegaConf.to_container(root.hydra.overrides.task, resolve=False)
    excluded = set(OmegaConf.to_container(root.hydra.job.config.override_dirname.exclude_keys, resolve=False))
    return [o for o in overrides if o.split("=", 1)[0].lstrip("+~") not in excluded]


def _slurm_job_start() -> datetime.datetime:
    """The job's start time as slurmctld has it (every task on every node reads the same one)."""
    try:
        output = subprocess.run(
            ["squeue", "--noheader", "--format=%S", "--jobs", os.environ["SLURM_JOB_ID"]],
            capture_output=True, text=True, timeout=30, check=True,
        ).stdout  # fmt: skip
        return datetime.datetime.fromisoformat(output.strip())
    except (OSError, ValueError, subprocess.SubprocessError):
        return launch_time()  # no squeue here: this task's clock


OmegaConf.register_new_resolver("run_name", run_name, replace=True)
OmegaConf.register_new_resolver("job_name", job_name, replace=True)
OmegaConf.register_new_resolver("job_number", job_number, replace=True)
