"""SLURM job states from `squeue` where the cluster keeps no accounting (`hydra/launcher=slurm` sweeps).

submitit asks `sacct` for the state of the jobs it waits on. Without an accounting database (small
clusters, and the test cluster of `scripts/slurm_cluster.sh`) sacct fails at every poll: two lines of noise
on the terminal each time, and a job that dies before writing its result stays "UNKNOWN", so the sweep
would wait for it forever. slurmctld itself knows the jobs in the queue and those that just left it.
"""

from __future__ import annotations

import logging
import subprocess
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig
from submitit.slurm.slurm import SlurmInfoWatcher, SlurmJob

log = logging.getLogger(__name__)

LEFT_THE_QUEUE = "LEFT_THE_QUEUE"  # a job squeue no longer lists: finished, whatever its result


class QueueWatcher(SlurmInfoWatcher):
    """Job states from `squeue --states=all`: pending, running and recently finished jobs of the cluster.

    All jobs are listed (not `-j <ids>`, which fails as soon as one of them has left the queue); a job that
    is no longer listed is done, so submitit stops waiting and reports a job without a result.
    """

    def _make_command(self) -> list[str] | None:
        if not self._registered - self._finished:
            return None
        return ["squeue", "--noheader", "--states=all", "--format=%i|%T|%N"]

    def read_info(self, string: bytes | str) -> dict[str, dict[str, str]]:
        text = string.decode() if isinstance(string, bytes) else string
        info = super().read_info("JobID|State|NodeList\n" + text)  # sacct's columns, as submitit reads them
        listed = {job.split("_")[0] for job in info}
        for job in self._registered - self._finished:
            if job.split("_")[0] not in listed:
                info[job] = {"JobID": job, "State": LEFT_THE_QUEUE, "NodeList": ""}
        return info


def sacct_works() -> bool:
    """Whether the cluster answers `sacct` (it has an accounting database)."""
    try:
        return subprocess.run(["sacct", "--noheader", "-X", "-j", "1"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


class SlurmJobStates(Callback):
    """Before a SLURM sweep submits its jobs: where `sacct` fails, submitit polls through `QueueWatcher`.

    A Hydra callback of `conf/hydra/launcher/slurm.yaml`: it runs in the process that submits and waits.
    """

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        if sacct_works():
            return
        log.info("sacct: this cluster keeps no job accounting; job states are read from squeue instead")
        SlurmJob.watcher = QueueWatcher(delay_s=600)  # a class attribute in submitit: every job polls through it
