"""Seeds are repeats: a sweep's jobs grouped into configurations, each with its mean and spread over seeds.

A configuration is every override but `seed`. When a sweep varies `seed`, one job is one draw of a noisy
experiment (mini-batch order, initial weights), so the sweep's answer is a comparison of configurations: the
best by its mean, and which others its difference from cannot be told from the seeds' spread (Welch's t-test
at 5%, `linreg.significance`). Without repeats a single run per configuration cannot tell the two apart, and the
summary says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from linreg.record import FINISHED, METRICS, Status
from linreg.significance import LEVEL, Sample, welch
from linreg.text_table import short_value

SEED = "seed"
# Not hyperparameters: which search ran, not what it tried.
HIDDEN_OVERRIDES = {"hparams_search", "trainer.enable_progress_bar"}


def overrides(row: dict[str, Any]) -> dict[str, str]:
    """The job's overrides that say what it tried."""
    return {key: value for key, value in row.get("overrides", {}).items() if key not in HIDDEN_OVERRIDES}


def varied_keys(rows: list[dict[str, Any]]) -> list[str]:
    """The override keys whose value is not the same in every job (a key some jobs lack counts as varied)."""
    keys = sorted({key for row in rows for key in overrides(row)})
    return [key for key in keys if len({overrides(row).get(key) for row in rows}) > 1]


def fixed_overrides(rows: list[dict[str, Any]]) -> dict[str, str]:
    """The overrides every job shares: said once above the table instead of in a column."""
    varied = set(varied_keys(rows))
    return {key: value for key, value in sorted(overrides(rows[0]).items()) if key not in varied} if rows else {}


def has_seed_repeats(rows: list[dict[str, Any]]) -> bool:
    """Whether the sweep ran some configuration with more than one seed."""
    return SEED in varied_keys(rows)


@dataclass
class Configuration:
    """The jobs of one setting of every override but the seed."""

    label: str  # the varied keys but the seed, `lr=0.05,model=mlp`; "every job" where only the seed varies
    settings: dict[str, str]  # every override but the seed
    jobs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def name(self) -> str:
        """The label as sentences show it: long values rounded or cut (the CSV keeps the label whole)."""
        parts = [part.partition("=") for part in self.label.split(",")]
        return ",".join(f"{key}={short_value(value)}" if sep else key for key, sep, value in parts)

    @property
    def finished(self) -> list[dict[str, Any]]:
        return [job for job in self.jobs if job.get("status") in FINISHED]

    @property
    def diverged(self) -> int:
        return sum(job.get("status") == Status.DIVERGED for job in self.jobs)

    @property
    def unfinished(self) -> int:
        """Jobs that neither finished nor diverged: failed, interrupted, still running or missing."""
        return len(self.jobs) - len(self.finished) - self.diverged

    def sample(self, metric: str) -> Sample | None:
        """The finished jobs' values of `metric` (the finite ones); None where there is none."""
        values = [job[metric] for job in self.finished if _finite(job.get(metric))]
        return Sample.of(values) if values else None

    def seeds(self) -> list[str]:
        return sorted((job.get("overrides", {}).get(SEED, "") for job in self.jobs), key=_natural)


def configurations(rows: list[dict[str, Any]], objective: str = "val_mse") -> list[Configuration]:
    """The jobs grouped by every override but the seed, best first.

    Best first: configurations whose every seed finished, by the mean objective; then those where some seed
    diverged or did not finish (an lr that diverges for one seed in three is not a safe pick), by their mean;
    then those with no finished seed.
    """
    shown = [key for key in varied_keys(rows) if key != SEED]
    groups: dict[tuple[tuple[str, str], ...], Configuration] = {}
    for row in rows:
        settings = {key: value for key, value in overrides(row).items() if key != SEED}
        label = ",".join(f"{key}={settings.get(key, '')}" for key in shown) or "every job"
        groups.setdefault(tuple(sorted(settings.items())), Configuration(label, settings)).jobs.append(row)

    def key(configuration: Configuration) -> tuple[int, float, str]:
        sample = configuration.sample(objective)
        if sample is None:
            return 2, math.inf, configuration.label
        return int(len(configuration.finished) < len(configuration.jobs)), sample.mean, configuration.label

    return sorted(groups.values(), key=key)


def by_config_table(configs: list[Configuration]) -> tuple[list[str], list[list[str]]]:
    """`summary_by_config.csv`: one row per configuration: its settings, the finished (`n`), diverged and
    unfinished jobs, the seeds, and each metric's mean and sample std over the finished jobs (empty where
    there is no value, the std also where there is one value)."""
    keys = sorted({key for config in configs for key in config.settings})
    metrics = [f"{metric}_{stat}" for metric in METRICS for stat in ("mean", "std")]
    header = ["configuration", *keys, "n", "diverged", "unfinished", "seeds", *metrics]
    cells = []
    for config in configs:
        stats = []
        for metric in METRICS:
            sample = config.sample(metric)
            stats += [_number(sample.mean), _number(sample.std)] if sample else ["", ""]
        cells.append(
            [
                config.label,
                *(config.settings.get(key, "") for key in keys),
                str(len(config.finished)),
                str(config.diverged),
                str(config.unfinished),
                " ".join(config.seeds()),
                *stats,
            ]
        )
    return header, cells


def mean_std(sample: Sample | None, digits: int = 4) -> str:
    """`0.00735 +- 0.000203`; a single value has no spread to show."""
    if sample is None:
        return ""
    if sample.n < 2:
        return f"{sample.mean:.{digits}g} (n = 1)"
    return f"{sample.mean:.{digits}g} +- {sample.std:.{digits - 1}g}"


def verdict(configs: list[Configuration], objective: str = "val_mse") -> list[str]:
    """The sweep's answer over seeds: the best configuration by its mean objective, and for every other one
    whether its difference from the best is significant (Welch's t-test, two-sided, at 5%)."""
    best = configs[0] if configs else None
    best_sample = best.sample(objective) if best else None
    if best is None or best_sample is None:
        return [f"best by mean {objective}: none, no configuration finished a seed with a {objective}"]
    lines = [f"best by mean {objective}: {best.name} ({objective} = {_described(best, best_sample)})"]
    for other in configs[1:]:
        sample = other.sample(objective)
        if sample is None:
            lines.append(f"no finished seed to compare: {other.name} ({_lost(other)})")
        elif best_sample.n < 2 or sample.n < 2:
            lines.append(
                f"cannot compare with {other.name} ({_described(other, sample)}): a spread needs two finished seeds"
            )
        else:
            test = welch(best_sample, sample)
            word = "better than" if test.significant else "not distinguishable from"
            relation = "<" if test.significant else ">="
            lines.append(
                f"{word} {other.name} ({_described(other, sample)}; "
                f"Welch's t-test p = {test.p:.2g} {relation} {LEVEL:g})"
            )
    return lines


def single_runs_note() -> str:
    """Said where a sweep has no seed repeats."""
    return (
        "one run per configuration cannot tell noise from a difference on stochastic data "
        "(mini-batches, noise): add seed=0,1,2"
    )


def _described(config: Configuration, sample: Sample) -> str:
    lost = f", {_lost(config)}" if len(config.finished) < len(config.jobs) else ""
    return f"{mean_std(sample)}, n = {sample.n}{lost}"


def _lost(config: Configuration) -> str:
    parts = [f"{config.diverged} diverged"] if config.diverged else []
    parts += [f"{config.unfinished} unfinished"] if config.unfinished else []
    return " and ".join(parts) + f" of {len(config.jobs)}"


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def _number(value: float) -> str:
    return "" if math.isnan(value) else f"{value:.8g}"


def _natural(text: str) -> tuple[float, str]:
    """Numbers by value (2 before 10), anything else after them by text."""
    try:
        return float(text), ""
    except ValueError:
        return math.inf, text
