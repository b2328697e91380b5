"""`results.json`: the machine-readable record of one run, read by the sweep summary and by people.

Files are written to a temporary name and renamed into place, so a reader (or a crash) never sees half a
file. Non-finite floats become null: JSON has no NaN, and `status` already says the run diverged.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

RESULTS_FILE = "results.json"
CHECKPOINT = Path("checkpoints") / "last.ckpt"  # the run's last state: weights, optimizer, loop counters
# Runs whose metrics are final: trained to `iters`, or ended early on purpose (early stopping, max_time).
FINISHED = ("ok", "stopped")


def write_atomically(path: Path, content: str | bytes) -> None:
    """Replace `path` with `content` in one rename: readers see the old file or the new one, never a mix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)  # mkstemp's 0600 would hide results from the other users of a shared cluster
        with os.fdopen(fd, "wb") as file:
            file.write(content.encode() if isinstance(content, str) else content)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def json_safe(value: Any) -> Any:
    """The value with every NaN or infinity replaced by None, recursively."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    return value


def write_results(run_dir: Path, results: dict[str, Any]) -> Path:
    path = run_dir / RESULTS_FILE
    write_atomically(path, json.dumps(json_safe(results), indent=2) + "\n")
    return path


def write_failure(run_dir: Path, record: dict[str, Any], error: str) -> None:
    """Mark the run "failed" after a fault such as a full disk, whatever it takes: a result is whole and true,
    or clearly not one.

    A full disk may refuse even the small temporary file of an atomic write; results.json already exists
    (written when the run started), so it is then overwritten in place, which needs no new space; failing
    that, it is removed rather than left saying "running".
    """
    failed = json.dumps(json_safe({**record, "status": "failed", "error": error}), indent=2) + "\n"
    path = run_dir / RESULTS_FILE
    try:
        write_atomically(path, failed)
        return
    except OSError:
        pass
    try:
        with path.open("r+") as file:
            file.write(failed)
            file.truncate()
    except OSError:
        path.unlink(missing_ok=True)


def save_config(run_dir: Path, cfg: DictConfig) -> None:
    """Replace the run's `.hydra/config.yaml` (where Hydra keeps it) with the config it really runs with.

    Hydra saves the config it composed; a resumed run runs with the config of the run it resumes instead.
    """
    saved = run_dir / ".hydra" / "config.yaml"
    if saved.is_file():
        write_atomically(saved, OmegaConf.to_yaml(cfg))


def read_results(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / RESULTS_FILE).read_text())


def split_overrides(overrides: Sequence[str]) -> dict[str, str]:
    """Hydra's `key=value` override strings as a dict: the columns of a sweep's summary."""
    return dict(override.split("=", 1) for override in overrides if "=" in override)
