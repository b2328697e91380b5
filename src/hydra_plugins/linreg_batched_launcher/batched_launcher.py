"""The batched launcher: a sweep's jobs that differ only in lr, iters, seed or the optimizer's settings train as
one run of a model holding one member per job (`python scripts/train.py -m lr=0.001,0.01 hydra/launcher=batched`).

Hydra instantiates launchers only from the `hydra_plugins` package, so the class lives here (chosen by
conf/hydra/launcher/batched.yaml); what it decides lives in `linreg.batched_launch`.
"""

from collections.abc import Sequence

from hydra.core.utils import JobReturn
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


class BatchedLauncher(Launcher):
    """Hydra's launcher interface; `linreg.batched_launch.launch` does the work."""

    def __init__(self) -> None:
        super().__init__()
        self.config: DictConfig | None = None
        self.task_function: TaskFunction | None = None
        self.hydra_context: HydraContext | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        from linreg.batched_compose import SweepConfigs

        # The sweeper holds the same context: its check that every job composes then composes as cheaply, and
        # the configs it made are the ones launched.
        if not isinstance(hydra_context.config_loader, SweepConfigs):
            hydra_context.config_loader = SweepConfigs(hydra_context.config_loader)
        self.config, self.hydra_context, self.task_function = config, hydra_context, task_function

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from linreg.batched_launch import launch  # Lightning's import waits until the jobs are known

        assert self.hydra_context is not None and self.config is not None and self.task_function is not None
        return launch(self.hydra_context, self.task_function, self.config, job_overrides, initial_job_idx)
