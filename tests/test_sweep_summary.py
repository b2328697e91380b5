"""The sweep summary's decisions, in-process on records as jobs write them (the real sweeps: test_sweeps.py)."""

from linreg.sweep import best_line, rank


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
