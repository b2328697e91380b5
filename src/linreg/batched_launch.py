"""The batched launcher's decisions (`hydra/launcher=batched`): which jobs of a sweep train together, and how
each job still ends up as a Hydra job of its own.

Jobs whose checked configs are equal once the keys a member can hold are set aside (`BATCHED_KEYS`, the
optimizer's settings, and the mini-batch order's seed where the batches do not depend on it) form one group,
trained as one run (`linreg.batched_run`). A job the batched run cannot take (another model, a callback it
does not know, `resume=`, a config its checks refuse) runs as the basic launcher runs it. Every job then goes
through Hydra's `run_job`: its `.hydra/` files, its log file, the Hydra callbacks (the sweep's summary) and
its return value are those of a basic job.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, configure_log, filter_overrides, run_job, setup_globals
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from linreg.batched_job import run_member_job, without_hydra
from linreg.distributed import uses_ddp
from linreg.errors import InvalidInput
from linreg.resume import run_config

log = logging.getLogger(__name__)

BATCHED_KEYS = ("lr", "iters", "seed", "objective")  # top-level keys a member holds (objective: what it returns)
BATCHED_MODELS = ("linreg.models.LinearRegression",)
# The callbacks the batched run does for each member itself (or shares): any other one runs the job alone.
BATCHED_CALLBACKS = (
    "linreg.loss_monitor.LossMonitor",
    "linreg.interrupt.GracefulInterrupt",
    "linreg.progress.StepProgressBar",
    "linreg.fit_pictures.FitPictures",
)


def batch_key(cfg: DictConfig) -> str | None:
    """What a job shares with the jobs it can train with (equal keys: one group), or None where it must run
    alone: a model other than the linear one, callbacks the batched run does not do, a resumed run, DDP, or
    a Trainer that validates by epochs or accumulates gradients."""
    trainer = cfg.get("trainer")
    callbacks = {str(node.get("_target_")) for node in cfg.callbacks.values()}
    alone = (
        cfg.model.get("_target_") not in BATCHED_MODELS
        or not callbacks <= set(BATCHED_CALLBACKS)
        or not {BATCHED_CALLBACKS[0], BATCHED_CALLBACKS[1]} <= callbacks
        or cfg.get("resume")
        or not cfg.optimizer.get("_partial_")
        or uses_ddp(trainer)
        or not isinstance(trainer.get("val_check_interval"), int)
        or trainer.get("check_val_every_n_epoch") is not None
        or trainer.get("accumulate_grad_batches", 1) != 1
    )
    if alone:
        return None
    shared = OmegaConf.to_container(cfg, resolve=True)
    for key in BATCHED_KEYS:
        shared.pop(key, None)
    shared["optimizer"] = {"_target_": shared["optimizer"]["_target_"]}  # its settings are a parameter group's
    data = shared["data"]
    if data.get("batch_size") is None or not data.get("shuffle", True):
        data.pop("shuffle_seed", None)  # the batches do not depend on it
    return json.dumps(shared, sort_keys=True, default=str)


def differing_keys(keys: Sequence[str]) -> list[str]:
    """The top-level config keys whose values differ between the groups (`data`, `model`, `logger`...)."""
    trees = [json.loads(key) for key in keys]
    names = sorted({name for tree in trees for name in tree})
    return [name for name in names if len({json.dumps(tree.get(name), sort_keys=True) for tree in trees}) > 1]


def launch(
    hydra_context: HydraContext,
    task_function: TaskFunction,
    config: DictConfig,
    job_overrides: Sequence[Sequence[str]],
    initial_job_idx: int,
) -> list[JobReturn]:
    """Hydra's `Launcher.launch` for the batched launcher: every job's JobReturn, in the order given."""
    setup_globals()
    configure_log(config.hydra.hydra_logging, config.hydra.verbose)
    Path(str(config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
    log.info(f"Launching {len(job_overrides)} jobs locally, batched where they can be")
    configs = []
    for idx, overrides in enumerate(job_overrides, initial_job_idx):
        log.info(f"\t#{idx} : {' '.join(filter_overrides(overrides))}")
        sweep_config = hydra_context.config_loader.load_sweep_config(config, list(overrides))
        with open_dict(sweep_config):
            sweep_config.hydra.job.id = idx
            sweep_config.hydra.job.num = idx
        configs.append(sweep_config)
    groups, alone = _grouped(configs)
    print(_groups_line(groups, alone, len(configs)))
    returns: dict[int, JobReturn] = {}

    def run(index: int, task: TaskFunction) -> None:
        returns[index] = run_job(
            hydra_context=hydra_context, task_function=task, config=configs[index],
            job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir",
        )  # fmt: skip
        configure_log(config.hydra.hydra_logging, config.hydra.verbose)

    def run_member(job: Any, task: TaskFunction) -> None:  # the sweep's logging is set back after the group
        returns[job.index] = run_member_job(
            hydra_context, task, job.config, job.hydra_config, job.task_config, job.config_yaml
        )

    for index in alone:
        run(index, task_function)
    for jobs in groups.values():
        try:
            _run_group(jobs, run, run_member, task_function, config)
        finally:
            configure_log(config.hydra.hydra_logging, config.hydra.verbose)
    return [returns[index] for index in range(len(configs))]


def _grouped(configs: Sequence[DictConfig]) -> tuple[dict[str, list[Any]], list[int]]:
    """The jobs by group (their `Job`s), and the indices of those that run alone, the basic way."""
    _import_training_once()

    groups: dict[str, list[Any]] = {}
    alone: list[int] = []
    folders: set[Path] = set()
    for index, sweep_config in enumerate(configs):
        job = _checked(index, sweep_config)
        key = batch_key(job.cfg) if job else None
        if job is None or key is None or job.run_dir in folders or job.run_dir.joinpath("results.json").exists():
            alone.append(index)  # refused, not batchable, or a folder another job has: the basic way says why
            continue
        folders.add(job.run_dir)
        groups.setdefault(key, []).append(job)
    return groups, alone


def _checked(index: int, sweep_config: DictConfig) -> Any:
    """The job's `Job` (its folder as Hydra's run_job will make it, its checked config), or None where its
    config is refused: the basic way then reports it as a basic sweep does."""
    from linreg.batched_run import Job

    hydra_config = HydraConfig.instance()
    previous = hydra_config.cfg
    try:
        folder = Path(str(OmegaConf.select(sweep_config, "hydra.sweep.dir")))
        run_dir = Path(os.path.abspath(folder / str(OmegaConf.select(sweep_config, "hydra.sweep.subdir"))))
        with read_write(sweep_config.hydra.runtime), open_dict(sweep_config.hydra.runtime):
            sweep_config.hydra.runtime.output_dir = str(run_dir)
        hydra_config.set_config(sweep_config)  # what the job's run_member_job holds again
        task_cfg = without_hydra(sweep_config)
        overrides = OmegaConf.to_container(sweep_config.hydra.overrides.task)
        try:
            cfg = run_config(task_cfg, overrides)
        except InvalidInput:
            return None
        return Job(index, sweep_config, cfg, run_dir, overrides, task_cfg, hydra_config.cfg)
    finally:
        hydra_config.cfg = previous


def _groups_line(groups: dict[str, list[Any]], alone: Sequence[int], total: int) -> str:
    """The one line that says how the sweep runs."""
    sizes = " + ".join(str(len(jobs)) for jobs in groups.values()) or "0"
    line = f"batched launcher: {total} jobs, {len(groups)} batched run(s) of {sizes} job(s)"
    if len(groups) > 1:
        line += f", apart because they differ in {', '.join(differing_keys(list(groups)))}, which one run cannot share"
    if alone:
        line += f"; {len(alone)} job(s) one by one (a model, callback or setting the batched run does not take)"
    return line


def _run_group(jobs: Sequence[Any], run: Any, run_member: Any, task_function: TaskFunction, config: DictConfig) -> None:
    """Train one group together, then let each job finish as a Hydra job (`run_member`: `run_job`'s work from
    the launcher's copies); a job the group's build refuses, or a group the data refuses, runs the basic way
    (`run`). An interrupted group stops the sweep, as a basic job does."""
    from linreg.batched_run import BatchedRun
    from linreg.sweep import write_tables

    try:
        batch = BatchedRun(jobs)
    except (InvalidInput, OSError):
        batch = None
    for job in batch.refused if batch else jobs:
        run(job.index, task_function)
    if batch is None or not batch.members:
        return
    batch.train()
    for member in batch.members:
        run_member(member.job, lambda _cfg, member=member: _finished(batch, member))
    received = batch.interrupt.received
    if received and any(member.record["status"] == "interrupted" for member in batch.members):
        from linreg.record import relative_to_cwd

        sweep_dir = Path(str(config.hydra.sweep.dir))
        write_tables(sweep_dir, config.objective)
        print(f"continue the sweep with: python scripts/train.py -m resume={relative_to_cwd(sweep_dir)}")
        sys.exit(128 + signal.Signals(received).value)


def _finished(batch: Any, member: Any) -> float:
    """A batched job's task, run by Hydra's run_job: its record completed and its summary printed."""
    from linreg import record

    result = batch.finish(member)
    print("\n".join(record.summary_lines(result, member.job.run_dir)))
    return record.objective(result, member.job.cfg.objective)


def _import_training_once() -> None:
    """Lightning's import with collection off, then what it built frozen, as `linreg.cli` does for a run."""
    if "linreg.batched_run" in sys.modules:
        return
    gc.disable()
    import linreg.batched_run  # noqa: F401

    gc.freeze()
    gc.enable()
