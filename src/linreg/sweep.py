"""A multirun's results side by side: `summary.csv` (every job, every column), `summary.md` (what the
terminal shows: the swept keys, the status and the key metrics, best job first, and the sweep's answer),
`summary_by_config.csv` where seeds repeat each configuration (`linreg.repeats`), and `summary.png`
(`linreg.sweep_plot`).

`SweepSummary` is a Hydra callback (configured in `conf/train.yaml`): as jobs end it rewrites the tables
(after the first job, then every few seconds), so an interrupted sweep still has them; when the sweep ends it
adds the plot, prints the summary and exits non-zero if a job failed. `python scripts/summarize.py <sweep
folder>` rebuilds them all.
"""

from __future__ import annotations

import csv
import io
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from linreg import record, repeats, sweep_plot, text_table
from linreg.record import FINISHED, LANDMARKS, METRICS, Status, write_atomically
from linreg.repeats import HIDDEN_OVERRIDES
from linreg.text_table import Column, short_value

# Best first: finished jobs by the objective, then diverged, interrupted, failed and unfinished ones.
STATUS_ORDER = {
    Status.OK: 0, Status.STOPPED: 0, Status.DIVERGED: 1, Status.INTERRUPTED: 2, Status.FAILED: 3, Status.RUNNING: 4,
    Status.MISSING: 5,
}  # fmt: skip
TABLE_METRICS = ("train_loss", "val_mse", "val_mae", "val_r2", "test_mse", "test_r2")  # the terminal's, in order
# A diverged job's outcome: empty in summary.csv, `diverged` in the terminal.
DIVERGED_BLANK = {*METRICS, "excess_mse", "parameter_distance", "w", "b"}
BY_CONFIG_FILE = "summary_by_config.csv"
TABLES_EVERY_S = 2.0  # while a sweep runs, its tables are rewritten at most this often (SweepSummary)


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
    """`summary.csv`'s header and cells: the jobs' overrides, model, optimizer, status, final metrics, the
    landmarks, steps and time.

    The learned w and b are columns only where a job's model is linear: other jobs leave them empty. A
    diverged job's outcome (its metrics, its excess over the optimum, its distance from it, w and b) is empty
    throughout: the numbers it ended with are what overflowed, not results (its `steps` says where).
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
        outcome = {
            **{m: _number(row.get(m)) for m in METRICS},
            **{m: _number(row.get(m), digits=4) for m in LANDMARKS},
            **dict(zip(learned, parameters, strict=True)),
        }
        if row.get("status") == Status.DIVERGED:
            outcome = {key: "" if key in DIVERGED_BLANK else value for key, value in outcome.items()}
        cells.append(
            [
                row["job"],
                *(str(overrides.get(k, "")) for k in override_keys),
                *(str(row.get(key, "")) for key in built),
                str(row.get("status", Status.MISSING)),
                *outcome.values(),
                str(row.get("steps", "")),
                _number(row.get("wall_s"), digits=2),
            ]
        )
    return header, cells


def terminal_table(ranked: list[dict[str, Any]], objective: str = "val_mse") -> list[str]:
    """The jobs as the terminal shows them, best first: the keys the sweep varies, the status and the key
    metrics (the objective first), in at most 120 characters a line. A diverged job reads `diverged` in every
    metric; a job without a value leaves it empty."""
    varied = repeats.varied_keys(ranked)
    metrics = [objective, *(m for m in TABLE_METRICS if m != objective)]
    columns = [Column(key, [short_value(repeats.overrides(row).get(key, "")) for row in ranked]) for key in varied]
    columns.append(Column("status", [str(row.get("status", Status.MISSING)) for row in ranked]))
    for metric in metrics:
        cells = [
            "diverged" if row.get("status") == Status.DIVERGED else _number(row.get(metric), digits=4) for row in ranked
        ]
        columns.append(Column(metric, cells, numeric=True))
    return text_table.render(columns, keep=len(varied) + 2, left_out_note=" (summary.csv has every column)")


def config_table(configs: list[repeats.Configuration], objective: str = "val_mse") -> list[str]:
    """The configurations as the terminal shows them, best first: their keys, the finished seeds (`n`), the
    diverged ones, and each key metric's mean +- sample std over the finished seeds."""
    keys = sorted({key for config in configs for key in config.settings})
    shown = [key for key in keys if len({config.settings.get(key) for config in configs}) > 1]
    columns = [Column(key, [short_value(config.settings.get(key, "")) for config in configs]) for key in shown]
    if not shown:
        columns.append(Column("configuration", [config.label for config in configs]))
    columns.append(Column("n", [str(len(config.finished)) for config in configs], numeric=True))
    columns.append(Column("diverged", [str(config.diverged) for config in configs], numeric=True))
    metrics = [objective, *(m for m in TABLE_METRICS if m != objective)]
    for metric in metrics:
        cells = [repeats.mean_std(config.sample(metric)) for config in configs]
        columns.append(Column(metric, cells, numeric=True))
    return text_table.render(columns, keep=len(columns) - len(metrics) + 1, left_out_note=" (in summary_by_config.csv)")


def best_line(ranked: list[dict[str, Any]], objective: str = "val_mse") -> str:
    """The answer the sweep was run for, in one line: which job won, by how much, and the jobs it tied with.

    Jobs tie when their objective reads the same in the table (8 significant digits); the ranking then takes
    the first by job name, and the line says so.
    """
    if not ranked or ranked[0].get("status") not in FINISHED or ranked[0].get(objective) is None:
        return f"best by {objective}: none, no job finished with a {objective}"
    best = ranked[0]
    value = _number(best[objective])
    tied = [row["job"] for row in ranked[1:] if row.get("status") in FINISHED and _number(row.get(objective)) == value]
    line = f"best by {objective}: {best['job']} ({objective} = {value})"
    return f"{line}, tied with {', '.join(tied)} (chose the first by job name)" if tied else line


def summary_text(ranked: list[dict[str, Any]], objective: str = "val_mse") -> str:
    """What the terminal shows and `summary.md` keeps: the overrides every job shares, the jobs' table, and the
    answer: with seed repeats the configurations' table and the best configuration against each other one;
    without, the best job (and, where several finished, that one run each cannot tell noise apart)."""
    fixed = repeats.fixed_overrides(ranked)
    lines = (
        text_table.wrap("every job: " + " ".join(f"{k}={short_value(v)}" for k, v in fixed.items())) if fixed else []
    )
    lines += terminal_table(ranked, objective)
    if repeats.has_seed_repeats(ranked):
        configs = repeats.configurations(ranked, objective)
        lines += ["", f"by configuration, mean +- sample std over seeds (every metric in {BY_CONFIG_FILE}):"]
        lines += config_table(configs, objective)
        lines.append("")
        for line in repeats.verdict(configs, objective):
            lines += text_table.wrap(line)
    else:
        lines.append("")
        if sum(row.get("status") in FINISHED for row in ranked) > 1:
            lines += text_table.wrap(repeats.single_runs_note())
        lines += text_table.wrap(best_line(ranked, objective))
    return "\n".join(lines) + "\n"


def write_tables(sweep_dir: Path, objective: str = "val_mse") -> str:
    """Write `summary.csv`, `summary.md` and, where seeds repeat the configurations, `summary_by_config.csv`;
    return the summary's text (`summary.md`)."""
    return _write_tables(sweep_dir, rank(collect(sweep_dir), objective), objective)


def _write_tables(sweep_dir: Path, ranked: list[dict[str, Any]], objective: str) -> str:
    _write_csv(sweep_dir / "summary.csv", *table(ranked))
    if repeats.has_seed_repeats(ranked):
        _write_csv(sweep_dir / BY_CONFIG_FILE, *repeats.by_config_table(repeats.configurations(ranked, objective)))
    text = summary_text(ranked, objective)
    write_atomically(sweep_dir / "summary.md", text)
    return text


def summarize(sweep_dir: Path, objective: str = "val_mse") -> tuple[str, list[dict[str, Any]]]:
    """Every summary file; returns the summary's text and the ranked rows."""
    ranked = rank(collect(sweep_dir), objective)
    text = _write_tables(sweep_dir, ranked, objective)
    sweep_plot.write_plot(sweep_dir, ranked, objective)
    return text, ranked


class SweepSummary(Callback):
    """Keeps a multirun's summary up to date as jobs end, and reports it when the sweep ends.

    The tables are rewritten from every job's record, so after each job they would cost the sweep time that
    grows with the square of its jobs (a quarter of a 128-job batched sweep): they are rewritten when the first
    job ends and then at most every `TABLES_EVERY_S` seconds. A cut sweep writes them as it stops, and
    `scripts/summarize.py` rebuilds them after a kill.
    """

    def __init__(self) -> None:
        self._written_at = -math.inf

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        if config.hydra.mode.name == "MULTIRUN" and time.monotonic() - self._written_at >= TABLES_EVERY_S:
            write_tables(Path(config.hydra.sweep.dir), config.objective)
            self._written_at = time.monotonic()

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


def _write_csv(path: Path, header: list[str], cells: list[list[str]]) -> None:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows([header, *cells])
    write_atomically(path, buffer.getvalue())


def _parameters(value: Any) -> str:
    """A single learned number as a number; several as a compact list."""
    if value is None:
        return ""
    flat = value
    while isinstance(flat, list) and len(flat) == 1:
        flat = flat[0]
    return f"{flat:.6g}" if isinstance(flat, float) else json.dumps(value)
