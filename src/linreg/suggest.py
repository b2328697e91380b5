"""Which key a user meant when Hydra refuses an unknown one: `momentum=0.9` -> `optimizer.momentum=0.9`.

The keys that exist are read from the config itself, never listed by hand: every nested key of the config
composed with the user's own group choices (`data=synthetic` adds `data.source.n_features`), and the keys of
every other option of every group, so that a key which belongs to another option says which one
(`n_features` -> `data=synthetic data.source.n_features=3`). This runs only on the error path, and imports
neither torch nor Lightning: a mistyped key still fails at once.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import OmegaConf

HOW_TO_LIST = "`python scripts/train.py --cfg job` lists them"


@dataclass
class KnownKeys:
    """The keys of the config a command composes, and those that only another group option has."""

    existing: set[str]  # every dotted key of the composed config, sections (`data.source`) included
    nodes: set[str] = field(default_factory=set)  # the sections: keys that hold other keys
    targets: dict[str, str] = field(default_factory=dict)  # section -> the class its _target_ names
    elsewhere: dict[str, list[str]] = field(default_factory=dict)  # dotted key -> ["data=synthetic", ...]


def dotted_keys(node: object, prefix: str = "") -> Iterator[tuple[str, object]]:
    """Every (dotted key, value) of a config tree, inner nodes included; interpolations are not resolved."""
    if isinstance(node, dict):
        for name, value in node.items():
            key = f"{prefix}.{name}" if prefix else str(name)
            yield key, value
            yield from dotted_keys(value, key)


def known_keys(config_dir: Path, config_name: str, overrides: Sequence[str], groups: Sequence[str]) -> KnownKeys:
    """Compose the config as the command would (its group choices only: the failing key is left out), and read
    the keys of every option of `groups`."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException

    choices = [o for o in overrides if "=" in o and o.split("=", 1)[0].lstrip("+~") in groups]
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(config_dir.resolve()), version_base="1.3"):
        try:
            cfg = compose(config_name=config_name, overrides=choices, return_hydra_config=True)
        except HydraException:  # a bad group choice too: suggest from the defaults
            cfg = compose(config_name=config_name, return_hydra_config=True)
        tree = OmegaConf.to_container(cfg, resolve=False)
        keys = dict(dotted_keys(tree))
        known = KnownKeys(
            existing=set(keys),
            nodes={key for key, value in keys.items() if isinstance(value, dict)},
            targets={key.removesuffix("._target_"): str(v) for key, v in keys.items() if key.endswith("._target_")},
        )
        loader = GlobalHydra.instance().config_loader()
        for group in groups:
            chosen = OmegaConf.select(cfg, f"hydra.runtime.choices.{group}", default=None)
            for option in loader.get_group_options(group):
                if option == chosen:
                    continue  # the chosen option: its keys are the config's own
                try:  # composed as a command choosing it would (Hydra's public API: no private repository)
                    other = compose(config_name=config_name, overrides=[f"{group}={option}"])
                except HydraException:
                    continue
                node = OmegaConf.select(other, group, default=None)
                own = OmegaConf.to_container(node, resolve=False) if node is not None else {}
                for key, _ in dotted_keys(own, group):
                    if key not in known.existing:
                        known.elsewhere.setdefault(key, []).append(f"{group}={option}")
    GlobalHydra.instance().clear()
    return known


def unknown_key_line(key: str, value: str, known: KnownKeys) -> str:
    """The one line for `key=value` where the config has no `key`: the nearest keys that exist, or the group
    option that has it, or how to pass a new argument to the class the key is under."""
    meant = nearest_keys(key, known)
    if meant:
        return f"{key}: no such key in the config; expected {' or '.join(f'{m}={value}' for m in meant)}"
    under = _nearest_target(key, known)
    if under is not None:
        node, target = under
        return (
            f"{key}: no such key in the config; expected one of the keys of {node} ({HOW_TO_LIST}), or "
            f"+{key}={value} to pass {target} an argument '{key.removeprefix(node + '.')}' the config does not list"
        )
    return f"{key}: no such key in the config; expected one of its keys ({HOW_TO_LIST})"


def nearest_keys(key: str, known: KnownKeys, limit: int = 3) -> list[str]:
    """What `key` most likely meant: `group=option key` where another option has it, else keys that exist.

    In order: the same key in another option; keys that exist with the same last part (`momentum` ->
    `optimizer.momentum`); the same last part in another option; then close spellings (difflib) of each.
    """
    existing = [
        k
        for k in sorted(known.existing)
        if (key.startswith("hydra.") or not k.startswith("hydra."))  # Hydra's own keys only for a hydra.* key
        and not k.rpartition(".")[2].startswith("_")  # never _target_, _partial_
    ]
    values = [k for k in existing if k not in known.nodes]  # a close spelling is of a value, not a section
    if key in known.elsewhere:
        return [_in_option(key, known)]
    leaf = key.rpartition(".")[2]
    same_leaf = _by_leaf(existing).get(leaf, [])
    if same_leaf:
        return same_leaf[:limit]
    other_leaf = _by_leaf(known.elsewhere).get(leaf, [])
    if other_leaf:
        return [_in_option(k, known) for k in other_leaf[:limit]]
    close = difflib.get_close_matches(key, values, n=limit, cutoff=0.8)
    if close:
        return close
    by_leaf = _by_leaf(existing)
    close_leaves = difflib.get_close_matches(leaf, list(by_leaf), n=limit, cutoff=0.75)
    parent = key.rpartition(".")[0]
    ranked = sorted((k for name in close_leaves for k in by_leaf[name]), key=lambda k: not k.startswith(parent))
    if ranked:
        return ranked[:limit]
    close = difflib.get_close_matches(key, list(known.elsewhere), n=limit, cutoff=0.8)
    return [_in_option(k, known) for k in close]


def _by_leaf(keys: Iterable[str]) -> dict[str, list[str]]:
    """Dotted keys grouped by their last part: `momentum` -> [`optimizer.momentum`]."""
    grouped: dict[str, list[str]] = {}
    for key in keys:
        grouped.setdefault(key.rpartition(".")[2], []).append(key)
    return grouped


def _in_option(key: str, known: KnownKeys) -> str:
    """`data=synthetic data.source.n_features`: the option to choose, then the key."""
    return f"{known.elsewhere[key][0]} {key}"


def _nearest_target(key: str, known: KnownKeys) -> tuple[str, str] | None:
    """The innermost node above `key` that names a class: a new key there reaches that class's constructor."""
    parts = key.split(".")
    for end in range(len(parts) - 1, 0, -1):
        node = ".".join(parts[:end])
        if node in known.targets:
            return node, known.targets[node]
    return None
