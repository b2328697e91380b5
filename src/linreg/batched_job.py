"""A batched member's Hydra job: what Hydra's `run_job` does for a job, from the copies the launcher already made.

`hydra.core.utils.run_job` copies a job's config about six times (`HydraConfig.set_config` twice, the task's
config, Hydra's config) and writes each `.hydra/` file from a fresh YAML dump: about 15 ms a job, the largest
per-job cost of a 128-point batched sweep after its training. The launcher has by then made each of these once
for its checks (`linreg.batched_launch`: the job's Hydra config, as `HydraConfig` holds it, and its task config
without `hydra`) and the batched run wrote `.hydra/config.yaml` beside the checkpoint; `run_member_job` takes
them instead. Everything else is `run_job`'s, in its order: the job's folder, working directory, log file,
`.hydra/` files, `hydra.job.env_set`, the Hydra callbacks' `on_job_start` and `on_job_end`, and the JobReturn
(its `cfg`, `hydra_cfg`, `overrides`, `working_dir`, `task_name`, status and return value) they and the sweeper
see. A job the batched run does not take goes through Hydra's own `run_job`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hydra import version
from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, JobRuntime, JobStatus, _flush_loggers, _save_config, configure_log, env_override
from hydra.types import HydraContext
from omegaconf import DictConfig, OmegaConf


def run_member_job(
    hydra_context: HydraContext, task: Callable[[DictConfig], Any], config: DictConfig, hydra_cfg: DictConfig,
    task_cfg: DictConfig, config_yaml: str | None,
) -> JobReturn:  # fmt: skip
    """Run `task(task_cfg)` as Hydra's `run_job` runs a sweep job whose `config` (with its
    `hydra.runtime.output_dir` set) is already split into `hydra_cfg` (what `HydraConfig.set_config(config)`
    made of it) and `task_cfg` (`config` without `hydra`); `config_yaml` is `task_cfg`'s YAML where it was
    written already. Neither copy is made again: both are read-only to the task and the callbacks, as the
    copies `run_job` makes for them are in practice (nothing writes to a finished job's config)."""
    callbacks = hydra_context.callbacks
    old_cwd = os.getcwd()
    instance = HydraConfig.instance()
    previous = instance.cfg
    instance.cfg = hydra_cfg
    output_dir = str(config.hydra.runtime.output_dir)
    chdir = hydra_cfg.hydra.job.chdir
    if chdir is None:  # as run_job: the working directory stays from version_base 1.2 on (the project's 1.3)
        chdir = not version.base_at_least("1.2")
    try:
        overrides = OmegaConf.to_container(config.hydra.overrides.task)
        ret = JobReturn(cfg=task_cfg, hydra_cfg=hydra_cfg, overrides=overrides)
        Path(output_dir).mkdir(parents=True, exist_ok=True)
        if chdir:
            os.chdir(output_dir)
        ret.working_dir = os.getcwd()
        configure_log(config.hydra.job_logging, config.hydra.verbose)
        if config.hydra.output_subdir is not None:
            hydra_output = Path(output_dir) / str(config.hydra.output_subdir)
            if config_yaml is None:
                _save_config(task_cfg, "config.yaml", hydra_output)
            else:
                hydra_output.mkdir(parents=True, exist_ok=True)
                (hydra_output / "config.yaml").write_text(config_yaml, encoding="utf-8")
            _save_config(hydra_cfg, "hydra.yaml", hydra_output)
            _save_config(config.hydra.overrides.task, "overrides.yaml", hydra_output)
        with env_override(hydra_cfg.hydra.job.env_set):
            callbacks.on_job_start(config=config, task_function=task)
            try:
                ret.return_value = task(task_cfg)
                ret.status = JobStatus.COMPLETED
            except Exception as e:  # as run_job: the sweeper and the callbacks see a failed job, the sweep goes on
                ret.return_value = e
                ret.status = JobStatus.FAILED
        ret.task_name = JobRuntime.instance().get("name")
        _flush_loggers()
        callbacks.on_job_end(config=config, job_return=ret)
        return ret
    finally:
        instance.cfg = previous
        if chdir:
            os.chdir(old_cwd)


def without_hydra(config: DictConfig) -> DictConfig:
    """`config` without its `hydra` node, as `run_job`'s task config is (its struct flag and resolver cache, so
    that `${now:...}` keeps the sweep's time): a copy of the rest only, a third of a deep copy of the whole."""
    task_cfg = OmegaConf.masked_copy(config, [key for key in config if key != "hydra"])
    OmegaConf.set_struct(task_cfg, OmegaConf.is_struct(config))
    OmegaConf.copy_cache(from_config=config, to_config=task_cfg)
    return task_cfg
