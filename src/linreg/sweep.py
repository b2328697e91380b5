"""A multirun's results side by side: `summary.csv`, `summary.md` (best job first) and `summary.png`.

`SweepSummary` is a Hydra callback (configured in `conf/train.yaml`): after each job it rewrites the
tables, so an interrupted sweep still has one; when the sweep ends it adds the plot, prints the table and
exits non-zero if a job failed. `python scripts/summarize.py <sweep folder>` rebuilds all three.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import sys
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from linreg.results import FINISHED, read_results, write_atomically

METRICS = ("train_loss", "val_mse", "val_mae", "val_r2")
# Not hyperparameters: which search ran, not what it tried.
HIDDEN_OVERRIDES = {"hparams_search", "trainer.enable_progress_bar"}
STATUS_ORDER = {"ok": 0, "stopped": 0, "diverged": 1, "interrupted": 2, "failed": 3, "running": 4, "missing": 5}


def collect(sweep_dir: Path) -> list[dict[str, Any]]:
    """One row per job folder (a folder holding Hydra's `.hydra/`), read from its `results.json`.

    A job killed before writing its results shows as "running" (it wrote that when it started) or
    "missing" (it never got that far).
    """
    rows = []
    for hydra_dir in sorted(sweep_dir.rglob(".hydra")):
        job_dir = hydra_dir.parent
        if job_dir == sweep_dir and not (job_dir / "results.json").exists():
            continue  # the sweep's own folder, unless a sweep without overrides ran its one job there
        try:
            record = read_results(job_dir)
        except (OSError, json.JSONDecodeError):
            record = {"status": "missing"}
        if not isinstance(record, dict):
            record = {"status": "missing"}  # not a record this project wrote
        rows.append({"job": str(job_dir.relative_to(sweep_dir)), **record})
    return rows


def rank(rows: list[dict[str, Any]], objective: str = "val_mse") -> list[dict[str, Any]]:
    """Best job first: finished jobs by the objective, then diverged, failed and unfinished ones."""

    def key(row: dict[str, Any]) -> tuple[int, float, str]:
        value = row.get(objective)
        finite = isinstance(value, int | float) and math.isfinite(value)
        return STATUS_ORDER.get(row.get("status"), 6), value if finite else math.inf, row["job"]

    return sorted(rows, key=key)


def table(rows: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """The header and the cells: the jobs' overrides, model, optimizer, status, final metrics, steps, time.

    The learned w and b are columns only where a job's model is linear: other jobs leave them empty.
    """
    override_keys = sorted({k for row in rows for k in row.get("overrides", {})} - HIDDEN_OVERRIDES)
    linear = any("weight" in row for row in rows)
    built = [key for key in ("model", "optimizer") if key not in override_keys]  # the class, where not swept
    header = ["job", *override_keys, *built, "status", *METRICS, *(["w", "b"] if linear else []), "steps", "wall_s"]
    cells = []
    for row in rows:
        overrides = row.get("overrides", {})
        parameters = [_parameters(row.get("weight")), _parameters(row.get("bias"))] if linear else []
        cells.append(
            [
                row["job"],
                *(str(overrides.get(k, "")) for k in override_keys),
                *(str(row.get(key, "")) for key in built),
                row.get("status", "missing"),
                *(_number(row.get(m)) for m in METRICS),
                *parameters,
                str(row.get("steps", "")),
                _number(row.get("wall_s"), digits=2),
            ]
        )
    return header, cells


def markdown(header: list[str], cells: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in cells]
    return "\n".join(lines) + "\n"


def best_line(ranked: list[dict[str, Any]], objective: str = "val_mse") -> str:
    """The answer the sweep was run for, in one line: which job won, and by how much."""
    if not ranked or ranked[0].get("status") not in FINISHED or ranked[0].get(objective) is None:
        return f"best by {objective}: none, no job finished with a {objective}"
    best = ranked[0]
    return f"best by {objective}: {best['job']} ({objective} = {_number(best[objective])})"


def write_tables(sweep_dir: Path, objective: str = "val_mse") -> str:
    """Write `summary.csv` and `summary.md` (the table, then the best job); return the markdown."""
    ranked = rank(collect(sweep_dir), objective)
    header, cells = table(ranked)
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows([header, *cells])
    write_atomically(sweep_dir / "summary.csv", buffer.getvalue())
    text = markdown(header, cells) + f"\n{best_line(ranked, objective)}\n"
    write_atomically(sweep_dir / "summary.md", text)
    return text


def write_plot(sweep_dir: Path) -> Path:
    """`summary.png`: final training loss against lr on log axes, one line per setting of the other overrides
    (`iters=100`, or `model=mlp,optimizer=adam`).

    A loss of exactly 0 cannot sit on a log axis: it is drawn at the bottom edge as a triangle. Diverged
    jobs have no loss: they are drawn at the top edge as an x. A job stopped before its first step has no
    loss either, and is left out of the plot (the table lists it).
    """
    # Its first import on a machine logs "generated new fontManager" at INFO, which Hydra's logging prints.
    logging.getLogger("matplotlib").setLevel(logging.WARNING)
    from matplotlib.figure import Figure  # imported here: jobs never pay for it, only the sweep's end

    rows = [
        row
        for row in collect(sweep_dir)
        if row.get("status") == "diverged" or (row.get("status") in FINISHED and row.get("train_loss") is not None)
    ]
    positive = [r["train_loss"] for r in rows if r["status"] in FINISHED and r.get("train_loss")]
    floor, ceiling = min(positive, default=1.0) / 10, max(positive, default=1.0) * 10
    figure = Figure(figsize=(7, 4.5), layout="constrained")
    axes = figure.add_subplot()
    for label in sorted({_line_label(row) for row in rows}):
        group = sorted((r for r in rows if _line_label(r) == label), key=lambda r: r["lr"])
        done = [r for r in group if r["status"] in FINISHED]
        losses = [r["train_loss"] or floor for r in done]
        (line,) = axes.plot([r["lr"] for r in done], losses, "o-", label=label)
        color = line.get_color()
        zero = [r["lr"] for r in done if not r["train_loss"]]
        axes.plot(zero, [floor] * len(zero), "v", color=color, markersize=10)
        diverged = [r["lr"] for r in group if r["status"] == "diverged"]
        axes.plot(diverged, [ceiling] * len(diverged), "x", color=color, markersize=10, mew=2)
    if any(r["status"] in FINISHED and not r["train_loss"] for r in rows):
        axes.plot([], [], "kv", label="loss 0 (drawn at the floor)")
    if any(r["status"] == "diverged" for r in rows):
        axes.plot([], [], "kx", mew=2, label="diverged")
    axes.set(xscale="log", yscale="log", xlabel="lr", ylabel="final train loss")
    axes.set_title("sweep " + "/".join(name for name in (sweep_dir.parent.name, sweep_dir.name) if name))
    axes.grid(True, which="both", alpha=0.3)
    if axes.get_legend_handles_labels()[0]:  # a sweep where every job failed has nothing to label
        axes.legend()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    path = sweep_dir / "summary.png"
    write_atomically(path, buffer.getvalue())
    return path


def _line_label(row: dict[str, Any]) -> str:
    """The job's overrides other than lr: the jobs that share them form one line of the plot."""
    others = sorted((k, v) for k, v in row.get("overrides", {}).items() if k != "lr" and k not in HIDDEN_OVERRIDES)
    return ",".join(f"{k}={v}" for k, v in others) or f"iters={row['iters']}"


def summarize(sweep_dir: Path, objective: str = "val_mse") -> tuple[str, list[dict[str, Any]]]:
    """All three files; returns the markdown table and the ranked rows."""
    text = write_tables(sweep_dir, objective)
    write_plot(sweep_dir)
    return text, rank(collect(sweep_dir), objective)


class SweepSummary(Callback):
    """Keeps a multirun's summary up to date, job by job, and reports it when the sweep ends."""

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        if config.hydra.mode.name == "MULTIRUN":
            write_tables(Path(config.hydra.sweep.dir), config.objective)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        if not sweep_dir.is_dir():
            return
        text, rows = summarize(sweep_dir, config.objective)
        print(f"\nsweep summary (best {config.objective} first), in {sweep_dir}/summary.md:\n{text}")
        failed = [row["job"] for row in rows if row.get("status") not in (*FINISHED, "diverged")]
        if failed:
            print(f"error: {len(failed)} of {len(rows)} jobs did not finish: {', '.join(failed)}", file=sys.stderr)
            sys.exit(1)


def _number(value: Any, digits: int = 8) -> str:
    if value is None:
        return ""
    return f"{value:.{digits}g}" if isinstance(value, float) else str(value)


def _parameters(value: Any) -> str:
    """A single learned number as a number; several as a compact list."""
    if value is None:
        return ""
    flat = value
    while isinstance(flat, list) and len(flat) == 1:
        flat = flat[0]
    return f"{flat:.6g}" if isinstance(flat, float) else json.dumps(value)
