"""How the benchmarks time things: alternating repetitions, medians, one row per comparison.

The machines are shared and noisy, so a figure is the median of several repetitions, and the project and
its plain-PyTorch baseline take turns, so that both see the same background load.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Row:
    """One comparison: the project's figure, the baseline's, their ratio and the target for the ratio."""

    name: str
    project: float
    baseline: float
    unit: str
    target: str  # e.g. "<= 1.5" or ">= 10"; "-" for a figure shown for scale, with no target
    note: str = ""

    @property
    def ratio(self) -> float:
        return self.project / self.baseline

    @property
    def met(self) -> bool | None:
        if self.target == "-":
            return None
        op, bound = self.target.split()
        return self.ratio <= float(bound) if op == "<=" else self.ratio >= float(bound)

    def as_dict(self) -> dict:
        return {**asdict(self), "ratio": self.ratio, "met": self.met}


def alternate(project: Callable[[], float], baseline: Callable[[], float], repeats: int) -> tuple[float, float]:
    """Medians of `repeats` runs of each, taking turns; each callable returns the figure it measured."""
    project_runs, baseline_runs = [], []
    for _ in range(repeats):
        baseline_runs.append(baseline())
        project_runs.append(project())
    return statistics.median(project_runs), statistics.median(baseline_runs)


def take_turns(figures: dict[str, Callable[[], float]], repeats: int) -> dict[str, float]:
    """Medians of `repeats` rounds in which each callable runs once, in turn: several figures that share load."""
    runs: dict[str, list[float]] = {name: [] for name in figures}
    for _ in range(repeats):
        for name, figure in figures.items():
            runs[name].append(figure())
    return {name: statistics.median(values) for name, values in runs.items()}


def wall_time(command: list[str], cwd: Path, returncode: int = 0) -> float:
    """Seconds a command takes from start to exit; it must exit with `returncode` (0: succeed)."""
    started = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, capture_output=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    seconds = time.perf_counter() - started
    if result.returncode != returncode:
        raise SystemExit(f"{command} exited with {result.returncode}, expected {returncode}: {result.stderr[-2000:]}")
    return seconds


def peak_rss_mib(command: list[str], cwd: Path) -> float:
    """The peak resident memory of a command, in MiB (run in a fresh interpreter so nothing else counts)."""
    probe = (
        "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, capture_output=True); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    output = subprocess.run(
        [sys.executable, "-c", probe, *command], cwd=cwd, check=True, capture_output=True, text=True
    )
    return int(output.stdout.strip()) / 1024  # ru_maxrss is in KiB on Linux


def interpreter(python: str | None = None) -> str:
    """`python` (default: this interpreter) as an absolute path, for commands run in other folders; not
    resolved, since a venv's python is a link out of the venv."""
    return os.path.abspath(python or sys.executable)


def train_command(*overrides: str, python: str | None = None) -> list[str]:
    """`python scripts/train.py <overrides>`, with this interpreter unless `python` names another."""
    return [python or sys.executable, str(REPO / "scripts" / "train.py"), *overrides]


def print_table(rows: list[Row]) -> None:
    header = f"{'comparison':<44} {'project':>12} {'baseline':>12} {'unit':<10} {'ratio':>7} {'target':>8}  met"
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row.name:<44} {row.project:>12.4g} {row.baseline:>12.4g} {row.unit:<10} {row.ratio:>7.2f} "
            f"{row.target:>8}  {'-' if row.met is None else 'yes' if row.met else 'NO'}"
        )
        if row.note:
            print(f"    {row.note}")


def print_markdown(rows: list[Row]) -> None:
    """The same rows as docs/performance.md's table, to paste from the run they came from."""
    print("| comparison | project | baseline | ratio | target |\n|---|---|---|---|---|")
    for row in rows:
        met = "" if row.met is None else ", met" if row.met else ", missed"
        target = "(shown)" if row.target == "-" else f"{row.target}x{met}"
        figures = f"{row.project:.4g} {row.unit} | {row.baseline:.4g} {row.unit} | {row.ratio:.2f}x"
        print(f"| {row.name} | {figures} | {target} |")


def write_json(path: Path, rows: list[Row], extra: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    machine = {
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "platform": sys.platform,
        "load_average_1_5_15_min_at_end": os.getloadavg(),  # the machine is shared: how busy it was
    }
    path.write_text(json.dumps({"machine": machine, **extra, "rows": [r.as_dict() for r in rows]}, indent=2) + "\n")


def cpu_seconds_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def compose(*overrides: str):
    """The config `scripts/train.py` would run with these overrides, for in-process measurements."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return hydra_compose(config_name="train", overrides=list(overrides))


def linear_fit(xs: list[float], ys: list[float]) -> dict[str, float]:
    """The line y = fixed + per_unit * x through points spanning decades, with R^2.

    Weighted by 1/y^2 (relative errors): a plain least-squares line would be set by the largest point
    alone, and its intercept, the fixed cost, would be noise.
    """
    weights = [1 / y**2 for y in ys]
    total = sum(weights)
    mean_x = sum(w * x for w, x in zip(weights, xs, strict=True)) / total
    mean_y = sum(w * y for w, y in zip(weights, ys, strict=True)) / total
    sxx = sum(w * (x - mean_x) ** 2 for w, x in zip(weights, xs, strict=True))
    per_unit = sum(w * (x - mean_x) * (y - mean_y) for w, x, y in zip(weights, xs, ys, strict=True)) / sxx
    fixed = mean_y - per_unit * mean_x
    residual = sum(w * (y - fixed - per_unit * x) ** 2 for w, x, y in zip(weights, xs, ys, strict=True))
    spread = sum(w * (y - mean_y) ** 2 for w, y in zip(weights, ys, strict=True))
    return {"fixed": fixed, "per_unit": per_unit, "r2": 1 - residual / spread if spread else 1.0}
