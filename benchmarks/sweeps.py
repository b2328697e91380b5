"""Target 3: a 12-job grid (4 lr x 3 iters, up to 1000 steps each), in the environment `make train` creates
(it has the sweep extra: the joblib launcher; `make bench` passes it as `--lean-python`), where users run grids.

- the basic launcher's overhead per job, beyond the job's own training, at most 0.3 s: the marginal cost of a
  job, from this grid and a one-job sweep, so that start-up and what a sweep does once cancel out;
- the joblib launcher with 2 workers at least 1.3x faster than the basic one, with identical results;
- for scale, a plain PyTorch script that trains the same 12 configurations one after the other.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from measure import Row, alternate, interpreter, train_command, wall_time

PLAIN_GRID = """
import sys, torch
from torch import nn
x = torch.tensor([[1.0], [2.0], [3.0], [4.0]]); y = 2 * x
for lr in map(float, sys.argv[1].split(",")):
    for iters in map(int, sys.argv[2].split(",")):
        torch.manual_seed(42)
        model = nn.Linear(1, 1); optimizer = torch.optim.SGD(model.parameters(), lr=lr)
        for _ in range(iters):
            loss = nn.functional.mse_loss(model(x), y); loss.backward(); optimizer.step(); optimizer.zero_grad()
"""


def _sweep_results(root: Path) -> dict[str, dict]:
    (sweep,) = root.glob("outputs/multirun/*/*")
    return {p.parent.name: json.loads(p.read_text()) for p in sweep.glob("*/results.json")}


def run(quick: bool, python: str | None = None) -> list[Row]:
    python = interpreter(python)  # the jobs run in temporary folders
    lrs, iters = ("0.01,0.1", "50,100") if quick else ("0.001,0.003,0.01,0.03", "100,300,1000")
    n_jobs = len(lrs.split(",")) * len(iters.split(","))
    repeats = 1 if quick else 3
    with tempfile.TemporaryDirectory() as tmp:
        counter = iter(range(1000))

        def basic(grid_lrs: str = lrs, grid_iters: str = iters) -> float:
            folder = Path(tmp) / f"basic{next(counter)}"
            folder.mkdir()
            seconds = wall_time(train_command("-m", f"lr={grid_lrs}", f"iters={grid_iters}", python=python), folder)
            basic.results = _sweep_results(folder)
            return seconds

        def joblib() -> float:
            folder = Path(tmp) / f"joblib{next(counter)}"
            folder.mkdir()
            command = train_command(
                "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", f"lr={lrs}", f"iters={iters}", python=python
            )
            seconds = wall_time(command, folder)
            joblib.results = _sweep_results(folder)
            return seconds

        def untrained_seconds(grid_lrs: str = lrs, grid_iters: str = iters) -> float:
            """A sweep's seconds less its jobs' own (training, validations, test, checkpoint: `wall_s`)."""
            seconds = basic(grid_lrs, grid_iters)
            return seconds - sum(r["wall_s"] for r in basic.results.values())

        one_lr, one_iters = lrs.split(",")[0], iters.split(",")[0]
        grid_rest_s, one_job_rest_s = alternate(
            untrained_seconds, lambda: untrained_seconds(one_lr, one_iters), repeats
        )
        overhead = (grid_rest_s - one_job_rest_s) / (n_jobs - 1)
        basic_s, joblib_s = alternate(basic, joblib, 1 if quick else 5)  # the target: more turns against the noise
        plain_s = wall_time([python, "-c", PLAIN_GRID, lrs, iters], Path(tmp))
    same = {k: r["weight"] for k, r in basic.results.items()} == {k: r["weight"] for k, r in joblib.results.items()}
    return [
        Row(
            f"{n_jobs}-job grid, basic launcher, overhead per job",
            overhead,
            0.3,
            "s/job",
            "<= 1",
            note=f"outside the jobs' own wall_s: {grid_rest_s:.1f} s for {n_jobs} jobs, {one_job_rest_s:.1f} s for one "
            "(Hydra composes each job's config: about 0.2 s of it)",
        ),
        Row(
            f"{n_jobs}-job grid: basic / joblib (2 workers)",
            basic_s,
            joblib_s,
            "s",
            ">= 1.3",
            note=f"identical results: {same}; each joblib worker pays its own start-up; environment: {python}",
        ),
        Row(f"{n_jobs}-job grid, basic launcher vs plain script", basic_s, plain_s, "s", "-"),
    ]


if __name__ == "__main__":
    from measure import print_table

    print_table(run(quick="--quick" in sys.argv))
