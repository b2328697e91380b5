"""Hydra's basic grid sweeper, which can also continue a cut sweep in place (`linreg.sweep_continuation`).

Hydra instantiates sweepers only from the `hydra_plugins` package, so the class lives here; what it decides
(which jobs finished) lives in `linreg.sweep_continuation`. Without `resume` it is the basic sweeper.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.types import Override


@dataclass
class ContinuableSweeperConf:
    _target_: str = "hydra_plugins.linreg_sweeper.continuable_sweeper.ContinuableSweeper"
    # Optional[...]: OmegaConf reads these annotations at run time (Hydra loads this module without postponing them)
    max_batch_size: Optional[int] = None  # noqa: UP045
    params: Optional[dict[str, str]] = None  # noqa: UP045
    resume: Optional[str] = None  # noqa: UP045  # the sweep folder being continued; set by `-m resume=<sweep folder>`


ConfigStore.instance().store(group="hydra/sweeper", name="continuable", node=ContinuableSweeperConf, provider="linreg")


class ContinuableSweeper(BasicSweeper):
    """The basic sweeper; with `resume`, the jobs that finished in that folder are left out."""

    def __init__(
        self, max_batch_size: int | None = None, params: dict[str, str] | None = None, resume: str | None = None
    ) -> None:
        super().__init__(max_batch_size=max_batch_size, params=params)
        self.resume = resume

    def split_arguments(self, overrides: list[Override], max_batch_size: int | None) -> list[list[list[str]]]:
        batches = BasicSweeper.split_arguments(overrides, max_batch_size)
        if not self.resume:
            return batches
        from linreg.sweep_continuation import finished_jobs

        finished = finished_jobs(Path(self.resume))
        jobs = [job for batch in batches for job in batch]
        left = [job for job in jobs if frozenset(job) not in finished]
        print(f"continuing {self.resume}: {len(jobs) - len(left)} of {len(jobs)} jobs finished and stay as they are; "
              f"running the other {len(left)}")  # fmt: skip
        return [list(chunk) for chunk in BasicSweeper.split_overrides_to_chunks(left, max_batch_size)] if left else []
