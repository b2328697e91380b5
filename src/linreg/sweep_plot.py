"""`summary.png`: why a sweep's winner won, in two panels, one line per configuration.

Left: the objective (what the ranking uses) against lr, one line per setting of the other swept keys
(`iters=100`, or `model=mlp,optimizer=adam`), with the data's stability limit as a vertical line (full-batch
SGD diverges to its right). Right: each configuration's validation MSE over the steps. Where seeds repeat a
configuration (`linreg.repeats`) its line is the mean over the finished seeds and a band spans mean +- std,
so a seed sweep reads as a few lines instead of one per seed. The y axes are logarithmic down to a little below
the smallest value and linear from there to 0 (matplotlib's symlog), so a value of exactly 0 is drawn at the
bottom instead of at a made-up floor. A diverged job is an x at the top of both panels. A job with no objective
(stopped before its first step, failed) is left out (the table lists it). The legends sit beside the panels.
"""

from __future__ import annotations

import io
import logging
import math
import textwrap
from itertools import pairwise
from pathlib import Path
from statistics import stdev
from typing import Any

from linreg import repeats
from linreg.record import FINISHED, Status, write_atomically
from linreg.repeats import Configuration

MAX_CURVE_LABELS = 12  # configurations named in a legend; a longer search keeps the table for names
MAX_DIVERGED_LABELS = 4  # lrs where jobs diverged labelled with their step; more would pile up (an Optuna search)
LEGEND_WIDTH = 24  # characters per legend line: a longer label wraps at its commas


def write_plot(sweep_dir: Path, rows: list[dict[str, Any]], objective: str = "val_mse") -> Path:
    """Draw `rows` (the sweep's jobs) into `sweep_dir/summary.png`; returns its path."""
    # Its first import on a machine logs "generated new fontManager" at INFO, which Hydra's logging prints.
    logging.getLogger("matplotlib").setLevel(logging.WARNING)
    from matplotlib.figure import Figure  # imported here: jobs never pay for it, only the sweep's end

    rows = [
        row
        for row in rows
        if row.get("status") == Status.DIVERGED or (row.get("status") in FINISHED and row.get(objective) is not None)
    ]
    configs = repeats.configurations(rows, objective)
    figure = Figure(figsize=(12, 4.8))
    # fixed places (constrained layout measured every tick label twice, half the plot's cost); the legends
    # take the space right of each panel, out of the data
    by_lr = figure.add_axes((0.055, 0.1, 0.315, 0.83))
    curves = figure.add_axes((0.545, 0.1, 0.31, 0.83))
    objectives = [r[objective] for r in rows if r["status"] in FINISHED]
    steps = [v for r in rows for _, v in r.get("val_curve") or [] if v is not None]
    # each panel's own range: a seed sweep's spread is visible, not squeezed by the curves' first steps
    diverged = any(row["status"] == Status.DIVERGED for row in rows)
    top_by_lr, top_curves = _top(objectives, diverged), _top(steps, diverged)
    _draw_by_lr(by_lr, configs, objective, top_by_lr)
    colors = dict(zip((c.label for c in configs), _colors(len(configs)), strict=True))
    for config in sorted(configs, key=lambda c: _natural(c.label)):
        _draw_curve(curves, config, colors[config.label], top_curves)
    by_lr.set_title("sweep " + "/".join(name for name in (sweep_dir.parent.name, sweep_dir.name) if name))
    by_lr.set(xscale="log", xlabel="lr", ylabel=f"{objective} (log scale; 0 at the bottom)")
    repeated = repeats.has_seed_repeats(rows)
    curves.set_title(f"validation MSE{', mean +- std over seeds' if repeated else ''} (x: diverged)", fontsize=11)
    curves.set(xlabel="step (log scale after 10)", ylabel="val_mse (log scale; 0 at the bottom)")
    curves.set_xscale("symlog", linthresh=10)  # steps 0..10 linear, then log: short and long runs both show
    _legend(by_lr)
    if 0 < len(configs) <= MAX_CURVE_LABELS:
        _legend(curves)
    for axes, values, top in ((by_lr, objectives, top_by_lr), (curves, steps, top_curves)):
        axes.set_yscale("symlog", linthresh=_linear_threshold(values))
        axes.set_ylim(0, top * 5 if diverged else top)  # errors are never negative; diverged jobs' x on the top row
        axes.grid(True, which="both", alpha=0.3)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    path = sweep_dir / "summary.png"
    write_atomically(path, buffer.getvalue())
    return path


def _draw_by_lr(axes: Any, configs: list[Configuration], objective: str, top: float) -> None:
    """The objective against lr: per line, the configurations' means with their spread as a band; an x at the
    top where a seed diverged, labelled with its step (or how many of the seeds) while few places are."""
    lines: dict[str, list[Configuration]] = {}
    for config in configs:
        lines.setdefault(_line_label(config), []).append(config)
    diverged_places: dict[float, list[str]] = {}
    for label in sorted(lines, key=_natural):
        group = sorted(lines[label], key=lambda c: float(c.jobs[0]["lr"]))
        points = [(float(c.jobs[0]["lr"]), c.sample(objective)) for c in group if c.sample(objective)]
        lrs, means = [lr for lr, _ in points], [sample.mean for _, sample in points]
        # clip_on=False: a value of exactly 0 sits on the bottom edge, whole
        (line,) = axes.plot(lrs, means, "o-", label=label, clip_on=False)
        spread = [(lr, s.mean - s.std, s.mean + s.std) for lr, s in points if s.n > 1]
        if spread:
            low, high = [max(lo, 0) for _, lo, _ in spread], [hi for _, _, hi in spread]
            axes.fill_between([lr for lr, _, _ in spread], low, high, color=line.get_color(), alpha=0.2, lw=0)
        for config in group:
            if config.diverged:
                lr = float(config.jobs[0]["lr"])
                axes.plot([lr], [top], "x", color=line.get_color(), ms=10, mew=2)
                words = diverged_places.setdefault(lr, [])
                words += [] if _diverged_words(config) in words else [_diverged_words(config)]
    labelled = _apart(sorted(diverged_places))
    for lr in diverged_places if labelled else []:
        text = "\n".join(diverged_places[lr])
        axes.annotate(text, (lr, top), textcoords="offset points", xytext=(0, -10), ha="center", va="top", fontsize=7)
    limits = sorted({c.jobs[0]["stability_limit"] for c in configs if c.jobs[0].get("stability_limit")})
    for limit in limits:
        label = f"stability limit {limit:.4g}" if limit == limits[0] else None
        axes.axvline(limit, color="red", linestyle=":", label=label)
    if diverged_places:
        axes.plot([], [], "kx", mew=2, label="diverged (at step)" if labelled else "diverged")


def _draw_curve(axes: Any, config: Configuration, color: Any, top: float) -> None:
    """A configuration's validation MSE over the steps: its one job's, or the mean over its finished seeds at
    the steps they share with a band of +- std; each diverged seed's curve up to its step, ending in an x."""
    curves = [_finite_curve(job) for job in config.finished]
    label = textwrap.fill(config.label.replace(",", ", "), LEGEND_WIDTH)
    if curves:
        steps = sorted(set.intersection(*(set(curve) for curve in curves)))
        by_step = [[curve[step] for curve in curves] for step in steps]
        means = [sum(values) / len(values) for values in by_step]
        axes.plot(steps, means, "-", color=color, alpha=0.9, linewidth=1.3, label=label)
        if len(curves) > 1:
            stds = [stdev(values) for values in by_step]
            low = [max(m - s, 0) for m, s in zip(means, stds, strict=True)]
            high = [m + s for m, s in zip(means, stds, strict=True)]
            axes.fill_between(steps, low, high, color=color, alpha=0.2, lw=0)
        label = None
    for job in config.jobs:
        if job["status"] == Status.DIVERGED:
            curve = _finite_curve(job)
            axes.plot(list(curve), list(curve.values()), "-", color=color, alpha=0.6, linewidth=0.8, label=label)
            label = None
            if job.get("diverged_at_step") is not None:
                axes.plot([job["diverged_at_step"]], [top], "x", color=color, markersize=9, mew=2)


def _legend(axes: Any) -> None:
    """Beside the panel, never over the data; nothing where there is nothing to name (every job failed)."""
    if axes.get_legend_handles_labels()[0]:
        axes.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)


def _line_label(config: Configuration) -> str:
    """The configuration's swept keys other than lr: the configurations that share them form one line."""
    others = [part for part in config.label.split(",") if not part.startswith("lr=") and part != "every job"]
    label = ",".join(others) or (f"mean of {len(config.jobs)} seeds" if len(config.jobs) > 1 else "")
    label = label or f"iters={config.jobs[0]['iters']}"
    return textwrap.fill(label.replace(",", ", "), LEGEND_WIDTH)


def _diverged_words(config: Configuration) -> str:
    """`step 17` for one diverged job; `2 of 3 diverged` for seeds."""
    if len(config.jobs) == 1 and config.jobs[0].get("diverged_at_step") is not None:
        return f"step {config.jobs[0]['diverged_at_step']}"
    return f"{config.diverged} of {len(config.jobs)} diverged"


def _apart(lrs: list[float]) -> bool:
    """Whether labels at these lrs (sorted) stay legible: a few of them, each at least twice the one before."""
    return len(lrs) <= MAX_DIVERGED_LABELS and all(b >= 2 * a for a, b in pairwise(lrs))


def _top(values: list[float], diverged: bool) -> float:
    """The top of a panel: ten times the largest finite value where diverged jobs are drawn there, else twice."""
    return max([abs(v) for v in values if math.isfinite(v)], default=1.0) * (10 if diverged else 2)


def _finite_curve(job: dict[str, Any]) -> dict[int, float]:
    return {step: value for step, value in job.get("val_curve") or [] if value is not None and math.isfinite(value)}


def _linear_threshold(values: list[float]) -> float:
    """symlog's linear range: below the smallest non-zero value, so every one of them is on the log part."""
    positive = [abs(v) for v in values if v and math.isfinite(v)]
    return min(positive, default=1.0) / 10


def _colors(count: int) -> list[Any]:
    """matplotlib's default cycle, repeated for more configurations than it has colors."""
    from matplotlib import rcParams

    cycle = rcParams["axes.prop_cycle"].by_key()["color"]
    return [cycle[i % len(cycle)] for i in range(count)]


def _natural(text: str) -> list[tuple[int, float, str]]:
    """`iters=100` before `iters=300` before `iters=1000`: the numbers in a label compared as numbers."""
    parts = []
    for part in text.replace("\n", "").split(","):
        key, _, value = part.partition("=")
        try:
            parts.append((0, float(value), key))
        except ValueError:
            parts.append((1, 0.0, part))
    return parts
