"""How a run spreads over processes and machines: who starts them, what is refused, and one run folder.

Lightning starts DDP's processes itself on one machine, by re-running the command line. Across machines an
external launcher starts every process (torchrun, or SLURM's srun), and Lightning takes the ranks from its
environment (`TorchElasticEnvironment`, `SLURMEnvironment`). Each of those processes composes its own Hydra
config, so the run folder must come from something they share, not from each one's clock.
"""

from __future__ import annotations

import datetime
import functools
import os
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass

from omegaconf import DictConfig, OmegaConf

from linreg.config import require_count
from linreg.errors import InvalidInput

# Launchers whose jobs' processes SLURM starts, one per task (srun): DDP may run inside their sweeps.
SLURM_LAUNCHERS = ("hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher",)
MAX_NAME_OVERRIDES = 120  # characters of the overrides in a run folder's name (file names end at 255)
STORE_TIMEOUT = datetime.timedelta(minutes=5)  # how long a torchrun rank waits for rank 0's run folder


def uses_ddp(trainer: object) -> bool:
    """DDP by name, or by more than one process (Lightning's "auto" strategy picks DDP then)."""
    if not isinstance(trainer, DictConfig):
        return False
    devices, num_nodes = trainer.get("devices", 1), trainer.get("num_nodes", 1)
    processes = (devices if type(devices) is int else 1) * (num_nodes if type(num_nodes) is int else 1)
    return "ddp" in str(trainer.get("strategy", "")) or processes > 1


def refuse_ddp_in_multirun(launcher_target: str) -> None:
    """DDP in a sweep only where SLURM starts the job's processes (Lightning #11300 breaks the others)."""
    if launcher_target in SLURM_LAUNCHERS:
        return
    name = launcher_target.rpartition(".")[2]
    raise InvalidInput(
        f"trainer=ddp: DDP cannot run inside a multirun with the {name} (Lightning's worker processes re-run "
        "the command line, -m included: Lightning #11300); expected hydra/launcher=slurm, where SLURM starts "
        "each job's processes, or each DDP run started on its own"
    )


@dataclass(frozen=True)
class Started:
    """The processes an external launcher started for this run."""

    launcher: str
    world_size: int
    per_node: int


def external_launch(environ: Mapping[str, str] = os.environ) -> Started | None:
    """torchrun's or srun's processes, read from the environment they set (as Lightning reads it)."""
    if "TORCHELASTIC_RUN_ID" in environ and "WORLD_SIZE" in environ:
        return Started("torchrun", int(environ["WORLD_SIZE"]), int(environ["LOCAL_WORLD_SIZE"]))
    if "SLURM_STEP_ID" in environ and "SLURM_NTASKS" in environ and environ.get("SLURM_JOB_NAME") != "interactive":
        tasks, nodes = int(environ["SLURM_NTASKS"]), int(environ.get("SLURM_NNODES", "1"))
        return Started("SLURM", tasks, tasks // nodes)
    return None


def require_processes(trainer: object, environ: Mapping[str, str] = os.environ) -> None:
    """Refuse, before training, a setting the processes at hand cannot satisfy: it would wait forever.

    Lightning waits for `devices x num_nodes` processes to join. On its own it starts only this machine's,
    so more than one node needs a launcher on every node; under one, the counts must be what it started.
    """
    if not isinstance(trainer, DictConfig):
        return  # linreg.config.check says what a trainer must be
    devices, num_nodes = trainer.get("devices", 1), trainer.get("num_nodes", 1)
    require_count("trainer.num_nodes", num_nodes, minimum=1)
    if isinstance(devices, bool) or not isinstance(devices, int):
        return  # "auto" or a list of device ids: Lightning's own rules
    started = external_launch(environ)
    if started is None:
        if num_nodes > 1 and not {"MASTER_ADDR", "NODE_RANK"} <= environ.keys():
            raise InvalidInput(
                f"trainer.num_nodes: {num_nodes} nodes, but no cluster environment started this process (no "
                "torchrun, SLURM task, or MASTER_ADDR and NODE_RANK), so it would wait forever for the other "
                f"nodes; expected torchrun --nnodes={num_nodes} on each node, hydra/launcher=slurm, "
                "or trainer.num_nodes=1"
            )
        _require_gpus(trainer, devices)
        return
    if devices != started.per_node or devices * num_nodes != started.world_size:
        nodes = started.world_size // started.per_node
        raise InvalidInput(
            f"trainer.devices: {devices} per node x trainer.num_nodes={num_nodes} is {devices * num_nodes} "
            f"processes, but {started.launcher} started {started.world_size} ({started.per_node} per node); "
            f"expected trainer.devices={started.per_node} trainer.num_nodes={nodes}"
        )


def _require_gpus(trainer: DictConfig, devices: int) -> None:
    """More GPUs than torch sees: Lightning's own error comes only after a long import."""
    if trainer.get("accelerator") not in ("gpu", "cuda"):
        return
    import torch  # only here: the checks run before torch's import (about 2 s) starts

    available = torch.cuda.device_count()
    if 0 < available < devices:
        raise InvalidInput(
            f"trainer.devices: {devices} GPUs, but torch sees {available} here; "
            f"expected trainer.devices={available} or fewer, or a launcher with more machines"
        )


@functools.cache
def launch_time() -> datetime.datetime:
    """When this run started, the same in every process of it: a torchrun run takes rank 0's clock.

    Under torchrun the ranks reach rank 0's time through the store torchrun's agents share (the one at
    MASTER_ADDR:MASTER_PORT that torch.distributed joins too). Computed once per process: Hydra composes
    twice, and the ranks must agree on one value.
    """
    environ = os.environ
    if environ.get("TORCHELASTIC_USE_AGENT_STORE") != "True" or int(environ.get("WORLD_SIZE", "1")) < 2:
        return datetime.datetime.now()
    from torch.distributed import TCPStore  # only under torchrun: a plain run does not pay for the import

    store = TCPStore(environ["MASTER_ADDR"], int(environ["MASTER_PORT"]), is_master=False, timeout=STORE_TIMEOUT)
    key = f"linreg/launch_time/attempt_{environ.get('TORCHELASTIC_RESTART_COUNT', '0')}"
    if environ["RANK"] == "0":
        store.set(key, datetime.datetime.now().isoformat())
    return datetime.datetime.fromisoformat(store.get(key).decode())


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
    readable = _readable(_root_)
    return f"{name}_{readable}" if readable else name


def _readable(root: DictConfig) -> str:
    """The command line's overrides as a file name, read as typed: `lr=${nosuch}` is text here, not resolved.

    `-` and `_` for `=` and `,`, and nothing that Hydra's override grammar or a shell would read (brackets,
    braces, quotes, spaces, `/`), so the folder can be typed unquoted in `resume=<run folder>`.
    """
    overrides = OmegaConf.to_container(root.hydra.overrides.task, resolve=False)
    excluded = set(OmegaConf.to_container(root.hydra.job.config.override_dirname.exclude_keys, resolve=False))
    kept = sorted(o for o in overrides if o.split("=", 1)[0].lstrip("+~") not in excluded)
    text = "_".join(kept).replace("=", "-").replace(",", "_")
    return re.sub(r"[^A-Za-z0-9._-]+", "", text)[:MAX_NAME_OVERRIDES]


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
