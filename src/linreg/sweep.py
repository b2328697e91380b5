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

from linreg import record
from linreg.record import FINISHED, LANDMARKS, METRICS, Status, write_atomically

# Not hyperparameters: which search ran, not what it tried.
HIDDEN_OVERRIDES = {"hparams_search", "trainer.enable_progress_bar"}
MAX_CURVE_LABELS = 12  # jobs named in the curves' legend; a longer search keeps the table for names
# Best first: finished jobs by the objective, then diverged, interrupted, failed and unfinished ones.
STATUS_ORDER = {
    Status.OK: 0, Status.STOPPED: 0, Status.DIVERGED: 1, Status.INTERRUPTED: 2, Status.FAILED: 3, Status.RUNNING: 4,
    Status.MISSING: 5,
}  # fmt: skip


def collect(sweep_dir: Path) -> list[dict[str, Any]]:
    """One row per job folder (a folder holding Hydra's `.hydra/`), read from its `results.json`.

    A job killed before writing its results shows as running (it wrote that when it started) or
    missing (it never got that far).
    """
    rows = []
    for hydra_dir in sorted(sweep_dir.rglob(".hydra")):
        job_dir = hydra_dir.parent
        if job_dir == sweep_dir and not (job_dir / "results.json").exists():
            continue  # the sweep's own folder, unless a sweep without overrides ran its one job there
        try:
            job = record.read(job_dir)
        except (OSError, ValueError):
            job = {"status": Status.MISSING}
        if not isinstance(job, dict):
            job = {"status": Status.MISSING}  # not a record this project wrote
        rows.append({"job": str(job_dir.relative_to(sweep_dir)), **job})
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
    learned = ["w", "b"] if linear else []
    header = ["job", *override_keys, *built, "status", *METRICS, *LANDMARKS, *learned, "steps", "wall_s"]
    cells = []
    for row in rows:
        overrides = row.get("overrides", {})
        parameters = [_parameters(row.get("weight")), _parameters(row.get("bias"))] if linear else []
        cells.append(
            [
                row["job"],
                *(str(overrides.get(k, "")) for k in override_keys),
                *(str(row.get(key, "")) for key in built),
                str(row.get("status", Status.MISSING)),
                *(_number(row.get(m)) for m in METRICS),
                *(_number(row.get(m), digits=4) for m in LANDMARKS),
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
    """The answer the sweep was run for, in one line: which job won, by how much, and the jobs it tied with.

    Jobs tie when their objective reads the same in the table (8 significant digits); the ranking then takes
    the first by job name, and the line says so.
    """
    if not ranked or ranked[0].get("status") not in FINISHED or ranked[0].get(objective) is None:
        return f"best by {objective}: none, no job finished with a {objective}"
    best = ranked[0]
    value = _number(best[objective])
    tied = [row["job"] for row in ranked if row.get("status") in FINISHED and _number(row.get(objective)) == value]
    if len(tied) == 1:
        return f"best by {objective}: {best['job']} ({objective} = {value})"
    return (
        f"best by {objective}: {len(tied)} jobs tie at {objective} = {value}: {', '.join(tied)}; "
        f"chose {best['job']}, the first by job name"
    )


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


def write_plot(sweep_dir: Path, objective: str = "val_mse") -> Path:
    """`summary.png`: why the winner won, in two panels.

    Left: the objective (what the ranking uses) against lr, one line per setting of the other overrides
    (`iters=100`, or `model=mlp,optimizer=adam`), with the data's stability limit as a vertical line (full-batch
    SGD diverges to its right). Right: every job's validation MSE over the steps. Both y axes are symlog: a
    value of exactly 0 sits at 0, not at a made-up floor. A diverged job is an x at the top of the left panel
    and at its step on the right, labelled with that step. A job with no objective (stopped before its first
    step, failed) is left out (the table lists it).
    """
    # Its first import on a machine logs "generated new fontManager" at INFO, which Hydra's logging prints.
    logging.getLogger("matplotlib").setLevel(logging.WARNING)
    from matplotlib.figure import Figure  # imported here: jobs never pay for it, only the sweep's end

    rows = [
        row
        for row in collect(sweep_dir)
        if row.get("status") == Status.DIVERGED or (row.get("status") in FINISHED and row.get(objective) is not None)
    ]
    figure = Figure(figsize=(12, 4.8))
    # fixed margins: constrained layout measured every tick label twice, half the plot's cost (about 0.3 s)
    figure.subplots_adjust(left=0.06, right=0.99, top=0.93, bottom=0.1, wspace=0.17)
    by_lr, curves = figure.subplots(1, 2)
    values = [r[objective] for r in rows if r["status"] in FINISHED]
    values += [v for r in rows for _, v in r.get("val_curve") or [] if v is not None]
    threshold = _linear_threshold(values)
    top = max([abs(v) for v in values if math.isfinite(v)], default=1.0) * 10
    for label in sorted({_line_label(row) for row in rows}):
        group = sorted((r for r in rows if _line_label(r) == label), key=lambda r: r["lr"])
        done = [r for r in group if r["status"] in FINISHED]
        # clip_on=False: a value of exactly 0 sits on the bottom edge, whole
        (line,) = by_lr.plot([r["lr"] for r in done], [r[objective] for r in done], "o-", label=label, clip_on=False)
        diverged = [r for r in group if r["status"] == Status.DIVERGED]
        by_lr.plot([r["lr"] for r in diverged], [top] * len(diverged), "x", color=line.get_color(), ms=10, mew=2)
    for row in rows:
        _draw_curve(curves, row, top)
    for lr, step in _diverged_places(rows, by_lr=True):
        by_lr.annotate(f"step {step}", (lr, top), textcoords="offset points", xytext=(0, -16), ha="center", fontsize=7)
    for (_, step), jobs in _diverged_places(rows, by_lr=False).items():
        curves.annotate("\n".join(jobs), (step, top), textcoords="offset points", xytext=(6, -4), va="top", fontsize=7)
    limits = sorted({r["stability_limit"] for r in rows if r.get("stability_limit")})
    for limit in limits:
        by_lr.axvline(
            limit, color="red", linestyle=":", label=f"stability limit {limit:.4g}" if limit == limits[0] else None
        )
    if any(r["status"] == Status.DIVERGED for r in rows):
        by_lr.plot([], [], "kx", mew=2, label="diverged (at step)")
    by_lr.set(xscale="log", xlabel="lr", ylabel=f"{objective} (symlog: 0 is 0)")
    by_lr.set_title("sweep " + "/".join(name for name in (sweep_dir.parent.name, sweep_dir.name) if name))
    if by_lr.get_legend_handles_labels()[0]:  # a sweep where every job failed has nothing to label
        by_lr.legend(fontsize=8, loc="lower left")
    curves.set(xlabel="step (symlog)", ylabel="val_mse (symlog: 0 is 0)")
    curves.set_title("validation MSE of every job (x: diverged)")
    curves.set_xscale("symlog", linthresh=10)  # steps 0..10 linear, then log: short and long runs both show
    if 0 < len(rows) <= MAX_CURVE_LABELS:
        curves.legend(fontsize=7, loc="lower left")
    for axes in (by_lr, curves):
        axes.set_yscale("symlog", linthresh=threshold)
        axes.set_ylim(0, top * 5)  # errors are never negative; the top row holds the diverged jobs' x
        axes.grid(True, which="both", alpha=0.3)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    path = sweep_dir / "summary.png"
    write_atomically(path, buffer.getvalue())
    return path


def _line_label(row: dict[str, Any]) -> str:
    """The job's overrides other than lr: the jobs that share them form one line of the plot."""
    others = sorted((k, v) for k, v in row.get("overrides", {}).items() if k != "lr" and k not in HIDDEN_OVERRIDES)
    return ",".join(f"{k}={v}" for k, v in others) or f"iters={row['iters']}"


def _linear_threshold(values: list[float]) -> float:
    """symlog's linear range: below the smallest non-zero value, so every one of them is on the log part."""
    positive = [abs(v) for v in values if v and math.isfinite(v)]
    return min(positive, default=1.0) / 10


def _draw_curve(axes: Any, row: dict[str, Any], top: float) -> None:
    """One job's validation MSE over steps; a diverged job's curve ends with an x at its step, at the top."""
    points = [(step, value) for step, value in row.get("val_curve") or [] if value is not None and math.isfinite(value)]
    steps, values = [step for step, _ in points], [value for _, value in points]
    (line,) = axes.plot(steps, values, "-", alpha=0.85, linewidth=1.2, label=row["job"])
    if row["status"] == Status.DIVERGED and row.get("diverged_at_step") is not None:
        axes.plot([row["diverged_at_step"]], [top], "x", color=line.get_color(), markersize=9, mew=2)


def _diverged_places(rows: list[dict[str, Any]], by_lr: bool) -> dict[tuple[float | None, int], list[str]]:
    """The diverged jobs by (lr, step), or by step alone: one label where several diverged at the same place."""
    places: dict[tuple[float | None, int], list[str]] = {}
    for row in rows:
        if row["status"] == Status.DIVERGED and row.get("diverged_at_step") is not None:
            places.setdefault((row["lr"] if by_lr else None, row["diverged_at_step"]), []).append(row["job"])
    return places


def summarize(sweep_dir: Path, objective: str = "val_mse") -> tuple[str, list[dict[str, Any]]]:
    """All three files; returns the markdown table and the ranked rows."""
    text = write_tables(sweep_dir, objective)
    write_plot(sweep_dir, objective)
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
        failed = [row["job"] for row in rows if row.get("status") not in (*FINISHED, Status.DIVERGED)]
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
