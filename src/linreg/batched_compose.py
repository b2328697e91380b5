"""Each job's config for the batched launcher, composed by Hydra once per set of configs chosen and copied with
each job's own values.

Hydra's `load_sweep_config` composes a job's whole tree from its files (the defaults list, every config group,
the `hydra` node: about 0.08 s a job on a 2-core machine), and a sweep asks for it twice per job: the sweeper
checks that every job composes (`validate_batch_is_legal`) before the launcher composes them again. The jobs of
an lr sweep choose the same configs and differ only in values, so `SweepConfigs` composes the first of them
with Hydra and gives every other a copy with its values applied as Hydra applies them
(`ConfigLoaderImpl._apply_overrides_to_config`), its task overrides and its `override_dirname`; a job that
chooses other configs (`data=synthetic`), adds, deletes or merges keys, or changes a `hydra` setting is
composed by Hydra. The launcher gets the configs the sweeper's check made, not new ones.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from hydra._internal.config_loader_impl import ConfigLoaderImpl, get_overrides_dirname
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override, OverrideType
from omegaconf import DictConfig, OmegaConf, open_dict


class SweepConfigs:
    """Hydra's config loader with a cheaper `load_sweep_config` for jobs that differ only in values; everything
    else is the loader's own (`__getattr__`)."""

    def __init__(self, loader: Any) -> None:
        self.loader = loader
        self._parser = OverridesParser.create()
        self._composed: dict[tuple[Any, ...], DictConfig] = {}  # per set of configs chosen: Hydra's composition
        self._checked: dict[tuple[str, ...], DictConfig] = {}  # the sweeper's check's configs, for the launcher

    def __getattr__(self, name: str) -> Any:
        return getattr(self.loader, name)

    def load_sweep_config(self, master_config: DictConfig, sweep_overrides: list[str]) -> DictConfig:
        """The job's config, as `ConfigLoaderImpl.load_sweep_config` composes it; the first call for a job keeps
        it for the second (the sweeper checks, the launcher then takes it)."""
        key = tuple(sweep_overrides)
        if key in self._checked:
            return self._checked.pop(key)
        config = self._compose(master_config, list(sweep_overrides))
        self._checked[key] = config  # the sweeper's check only reads it
        return config

    def _compose(self, master_config: DictConfig, sweep_overrides: list[str]) -> DictConfig:
        repository = getattr(self.loader, "repository", None)
        lines = [*OmegaConf.to_container(master_config.hydra.overrides.hydra), *sweep_overrides]
        parsed = self._parser.parse_overrides(lines)
        if repository is None:
            return self.loader.load_sweep_config(master_config, sweep_overrides)
        values = [o for o in parsed if _a_value(o, repository)]
        chosen = (tuple(o.input_line for o in parsed if o not in values), tuple(o.key_or_group for o in values))
        composed = self._composed.get(chosen)
        if composed is None:
            config = self.loader.load_sweep_config(master_config, sweep_overrides)
            self._composed[chosen] = copy.deepcopy(config)
            return config
        return _with_values(composed, master_config, parsed, values)


def _a_value(override: Override, repository: Any) -> bool:
    """An override that sets a value Hydra applies after composing (`lr=0.1`), not one that chooses a config,
    adds, deletes or merges keys, or changes Hydra's settings."""
    return (
        override.type == OverrideType.CHANGE
        and override.package is None
        and not override.is_hydra_override()
        and not repository.group_exists(override.key_or_group)
        and not isinstance(override.value(), dict | list)
    )


def _with_values(
    composed: DictConfig, master_config: DictConfig, parsed: Sequence[Override], values: Sequence[Override]
) -> DictConfig:
    """A copy of `composed` (a job that chose the same configs) as Hydra composes the job of `parsed`."""
    config = copy.deepcopy(composed)
    ConfigLoaderImpl._apply_overrides_to_config(list(values), config)
    task = [o for o in parsed if not o.is_hydra_override()]
    naming = config.hydra.job.config.override_dirname
    with open_dict(config.hydra):
        config.hydra.overrides.task = [o.input_line for o in task]
        config.hydra.job.override_dirname = get_overrides_dirname(
            overrides=task, kv_sep=naming.kv_sep, item_sep=naming.item_sep, exclude_keys=naming.exclude_keys
        )
    OmegaConf.copy_cache(from_config=master_config, to_config=config)
    return config
