"""How a run spreads over processes and machines: who starts them, what is refused, and one run folder.

Lightning starts DDP's processes itself on one machine, by re-running the command line. Across machines an
external launcher starts every process (torchrun, or SLURM's srun), and Lightning takes the ranks from its
environment (`TorchElasticEnvironment`, `SLURMEnvironment`). Each of those processes composes its own Hydra
config, so the run folder's name must come from something they share (`launch_time`), not each one's clock.
"""

from __future__ import annotations

import datetime
import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass

from omegaconf import DictConfig

from linreg.checks import require_count
from linreg.errors import InvalidInput

# Launchers whose jobs' processes SLURM starts, one per task (srun): DDP may run inside their sweeps.
SLURM_LAUNCHERS = ("hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher",)
SLURM_INTERACTIVE_NAMES = ("bash", "interactive")  # lightning.fabric's _is_slurm_interactive_mode
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
    # Lightning's SLURMEnvironment rule: a job named bash or interactive is a shell, not srun's tasks
    interactive = environ.get("SLURM_JOB_NAME") in SLURM_INTERACTIVE_NAMES
    if "SLURM_STEP_ID" in environ and "SLURM_NTASKS" in environ and not interactive:
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
        return
    if devices != started.per_node or devices * num_nodes != started.world_size:
        nodes = started.world_size // started.per_node
        raise InvalidInput(
            f"trainer.devices: {devices} per node x trainer.num_nodes={num_nodes} is {devices * num_nodes} "
            f"processes, but {started.launcher} started {started.world_size} ({started.per_node} per node); "
            f"expected trainer.devices={started.per_node} trainer.num_nodes={nodes}"
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
