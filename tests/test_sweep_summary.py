"""The sweep summary's decisions, in-process on job folders holding records as jobs write them (the real sweeps:
test_sweeps.py and the README's seed sweep in test_readme_sweeps.py)."""

import csv
import json
import math
import statistics

import pytest

from linreg.sweep import best_line, rank, summarize, write_tables
from linreg.text_table import WIDTH


def test_jobs_rank_best_first_finished_then_diverged_failed_and_unfinished():
    """In-process, on records as the jobs wrote them: the finished jobs by the objective (ties by name), then
    diverged, interrupted, failed, running and missing ones."""
    rows = [
        {"job": "missing", "status": "missing"},
        {"job": "b", "status": "ok", "val_mse": 0.5},
        {"job": "diverged", "status": "diverged", "val_mse": None},
        {"job": "c", "status": "stopped", "val_mse": 0.25},
        {"job": "running", "status": "running"},
        {"job": "a", "status": "ok", "val_mse": 0.5},
        {"job": "failed", "status": "failed", "error": "x"},
        {"job": "interrupted", "status": "interrupted", "val_mse": 0.01},
        {"job": "nan", "status": "ok", "val_mse": None},
    ]
    ranked = [row["job"] for row in rank(rows)]
    assert ranked == ["c", "a", "b", "nan", "diverged", "interrupted", "failed", "running", "missing"]
    assert best_line(rank(rows)) == "best by val_mse: c (val_mse = 0.25)"
    assert [row["job"] for row in rank(rows, "train_loss")][:3] == ["a", "b", "c"]  # no train_loss: by name


def job(overrides: dict[str, str], val_mse: float | None, status: str = "ok", **more) -> dict:
    """A finished job's record, as results.json holds it."""
    metrics = {"train_loss": val_mse, "val_mse": val_mse, "val_mae": val_mse and math.sqrt(val_mse), "val_r2": 0.99}
    curve = [[0, 5.0], [100, val_mse]] if val_mse is not None else [[0, 5.0]]
    return {
        "status": status, "overrides": overrides, "lr": float(overrides.get("lr", 0.1)), "iters": 100, "seed": 0,
        "stability_limit": 0.9555, "steps": 100, "val_curve": curve, **metrics, **more,
    }  # fmt: skip


def write_sweep(folder, jobs: list[dict]):
    """A sweep folder as Hydra and the jobs leave it: one folder per job with `.hydra/` and `results.json`."""
    for record in jobs:
        job_dir = folder / ",".join(f"{k}={v}" for k, v in sorted(record["overrides"].items()))
        (job_dir / ".hydra").mkdir(parents=True)
        (job_dir / "results.json").write_text(json.dumps(record))
    return folder


def seed_sweep(folder, values: dict[str, list[float]]):
    """lr=<key> with one seed per value."""
    jobs = [
        job({"lr": lr, "seed": str(seed), "data": "synthetic", "data.batch_size": "8"}, value)
        for lr, seeds in values.items()
        for seed, value in enumerate(seeds)
    ]
    return write_sweep(folder, jobs)


def lines_of(text: str) -> list[str]:
    return text.rstrip("\n").splitlines()


def test_two_configurations_closer_than_the_seed_spread_are_not_distinguishable(tmp_path):
    """The issue's case: the lrs' means differ by about 4e-5, the seeds by about 2e-4. The best configuration
    is named by its mean with its spread, and the other is said to be not distinguishable from it."""
    sweep = seed_sweep(
        tmp_path, {"0.05": [0.00717, 0.00732, 0.00756, 0.00745], "0.06": [0.00719, 0.00732, 0.00769, 0.0075]}
    )
    lines = lines_of(write_tables(sweep))
    best = statistics.mean([0.00717, 0.00732, 0.00756, 0.00745])
    std = statistics.stdev([0.00717, 0.00732, 0.00756, 0.00745])
    assert f"best by mean val_mse: lr=0.05 (val_mse = {best:.4g} +- {std:.3g}, n = 4)" in lines
    (other,) = [line for line in lines if "lr=0.06" in line]
    assert other.startswith("not distinguishable from lr=0.06 (") and "Welch's t-test p = " in other
    assert "best by val_mse:" not in "\n".join(lines)  # no single lucky job named best


def test_a_clear_difference_between_configurations_is_named(tmp_path):
    sweep = seed_sweep(tmp_path, {"0.05": [0.0072, 0.0073, 0.0074], "0.5": [0.0101, 0.0103, 0.0102]})
    lines = lines_of(write_tables(sweep))
    assert lines[-2].startswith("best by mean val_mse: lr=0.05 (val_mse = 0.0073 +- 0.0001, n = 3)")
    assert lines[-1].startswith("better than lr=0.5 (0.0102 +- 0.0001, n = 3; Welch's t-test p = ")
    assert "not distinguishable" not in "\n".join(lines)


def test_the_configuration_table_has_n_and_each_metrics_mean_and_sample_std(tmp_path):
    values = {"0.05": [0.0072, 0.0075, 0.0071], "0.06": [0.0080, 0.0079]}
    sweep = seed_sweep(tmp_path, values)
    write_sweep(
        sweep, [job({"lr": "0.06", "seed": "2", "data": "synthetic", "data.batch_size": "8"}, None, "diverged")]
    )
    write_tables(sweep)
    with (sweep / "summary_by_config.csv").open() as file:
        rows = {row["lr"]: row for row in csv.DictReader(file)}
    assert {"configuration", "n", "diverged", "seeds", "val_mse_mean", "val_mse_std", "test_r2_std"} <= rows[
        "0.05"
    ].keys()
    for lr, seeds in values.items():
        assert int(rows[lr]["n"]) == len(seeds)
        assert float(rows[lr]["val_mse_mean"]) == pytest.approx(statistics.mean(seeds), rel=1e-7)
        assert float(rows[lr]["val_mse_std"]) == pytest.approx(statistics.stdev(seeds), rel=1e-7)  # n - 1
    assert (rows["0.05"]["diverged"], rows["0.06"]["diverged"]) == ("0", "1")  # counted apart from n
    assert rows["0.06"]["seeds"] == "0 1 2"
    assert rows["0.05"]["test_r2_mean"] == rows["0.05"]["test_r2_std"] == ""  # no value: empty, not 0


def test_a_configuration_where_a_seed_diverged_ranks_after_one_where_none_did(tmp_path):
    sweep = seed_sweep(tmp_path, {"0.05": [0.0072, 0.0073], "0.9": [0.0010, 0.0011]})
    write_sweep(sweep, [job({"lr": "0.9", "seed": "2", "data": "synthetic", "data.batch_size": "8"}, None, "diverged")])
    lines = lines_of(write_tables(sweep))
    assert lines[-2].startswith("best by mean val_mse: lr=0.05 (")
    assert lines[-1].startswith("better than lr=0.9 (0.00105 +- 7.07e-05, n = 2, 1 diverged of 3; Welch's")


def test_one_seed_only_is_not_compared_and_a_sweep_without_seeds_says_it_cannot_tell_noise(tmp_path):
    lines = lines_of(write_tables(seed_sweep(tmp_path / "one", {"0.05": [0.0072, 0.0073], "0.06": [0.0079]})))
    assert lines[-1] == "cannot compare with lr=0.06 (0.0079 (n = 1), n = 1): a spread needs two finished seeds"
    grid = write_sweep(
        tmp_path / "grid", [job({"lr": lr}, value) for lr, value in (("0.05", 0.0072), ("0.06", 0.0073))]
    )
    lines = lines_of(write_tables(grid))
    assert "one run per configuration cannot tell noise from a difference" in lines[-2]
    assert lines[-1] == "best by val_mse: lr=0.05 (val_mse = 0.0072)"
    assert not (grid / "summary_by_config.csv").exists()


def test_every_printed_line_of_a_wide_sweep_fits_120_characters(tmp_path):
    """Many swept keys, long values (CSV paths, an Optuna trial's lr), a diverged job: the table keeps the swept
    keys, the status and the objective, leaves out what does not fit and says so."""
    folder = "/home/someone/experiments/2026/very/long/folder/of/the/measurements"
    jobs = [
        job({"lr": lr, "iters": "1000", "model": "mlp", "optimizer": optimizer, "data.path": path, "seed": seed}, 0.1)
        for lr in ("0.06833840246721405", "0.07219579606633092")
        for optimizer in ("sgd", "adam")
        for path in (f"{folder}/longley_extended.csv", f"{folder}/filip_with_more_columns.csv")
        for seed in ("0", "1")
    ]
    jobs.append(job({**jobs[0]["overrides"], "lr": "0.5"}, None, "diverged", val_mae=5.19e20))
    text, _ = summarize(write_sweep(tmp_path, jobs))
    assert max(len(line) for line in lines_of(text)) <= WIDTH, text
    header = next(line for line in lines_of(text) if line.startswith("| "))
    swept = ["data.path", "lr", "optimizer", "seed", "status", "val_mse"]
    assert [cell.strip() for cell in header.strip("|").split("|")][:6] == swept
    (left_out,) = [line for line in lines_of(text) if line.startswith("not shown here: ")][:1]
    assert left_out.endswith("test_r2 (summary.csv has every column)")
    assert lines_of(text)[0] == "every job: iters=1000 model=mlp"
    assert "| /home/someone/exper…ith_more_columns.csv | 0.06834 |" in text  # a path cut in its middle, lr rounded


def test_a_diverged_job_reads_alike_in_every_metric(tmp_path):
    """The job that diverged left a finite val MAE of 5.19e20 beside a val MSE of null: the CSV leaves every
    metric (and w, b, the distance from the optimum) empty, and the table writes `diverged` in each."""
    diverged = job({"lr": "1.0"}, None, "diverged", val_mae=5.19e20, weight=[[1.8e20]], bias=[6e19], excess_mse=7e38)
    sweep = write_sweep(tmp_path, [job({"lr": "0.1"}, 0.01, weight=[[2.0]], bias=[0.0]), diverged])
    text = write_tables(sweep)
    with (sweep / "summary.csv").open() as file:
        row = next(row for row in csv.DictReader(file) if row["status"] == "diverged")
    outcome = ["train_loss", "val_mse", "val_mae", "val_r2", "test_mse", "test_mae", "test_r2", "excess_mse", "w", "b"]
    assert {row[key] for key in [*outcome, "parameter_distance"]} == {""}
    assert row["stability_limit"] == "0.9555" and row["steps"] == "100"  # the data's, and where it stopped
    (line,) = [line for line in lines_of(text) if line.startswith("| 1.0 ")]
    assert [cell.strip() for cell in line.strip("|").split("|")][1:] == ["diverged"] * 7
