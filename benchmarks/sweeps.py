"""Target 4: a 12-job grid (4 lr x 3 iters, up to 1000 steps each).

- the basic launcher's overhead per job, beyond the job's own training, at most 0.3 s;
- the joblib launcher with 2 workers at least 1.3x faster than the basic one, with identical results;
- for scale, a plain PyTorch script that trains the same 12 configurations one after the other.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from measure import Row, alternate, train_command, wall_time

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


def run(quick: bool) -> list[Row]:
    lrs, iters = ("0.01,0.1", "50,100") if quick else ("0.001,0.003,0.01,0.03", "100,300,1000")
    n_jobs = len(lrs.split(",")) * len(iters.split(","))
    repeats = 1 if quick else 3
    with tempfile.TemporaryDirectory() as tmp:
        counter = iter(range(1000))

        def basic() -> float:
            folder = Path(tmp) / f"basic{next(counter)}"
            folder.mkdir()
            seconds = wall_time(train_command("-m", f"lr={lrs}", f"iters={iters}"), folder)
            basic.results = _sweep_results(folder)
            return seconds

        def joblib() -> float:
            folder = Path(tmp) / f"joblib{next(counter)}"
            folder.mkdir()
            command = train_command(
                "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", f"lr={lrs}", f"iters={iters}"
            )
            seconds = wall_time(command, folder)
            joblib.results = _sweep_results(folder)
            return seconds

        def single_run_startup() -> float:
            folder = Path(tmp) / f"single{next(counter)}"
            seconds = wall_time(train_command("iters=1", f"hydra.run.dir={folder}"), Path(tmp))
            return seconds - json.loads((folder / "results.json").read_text())["wall_s"]

        basic_s, joblib_s = alternate(basic, joblib, repeats)
        startup_s = single_run_startup()
        plain_s = wall_time([sys.executable, "-c", PLAIN_GRID, lrs, iters], Path(tmp))
    training_s = sum(r["wall_s"] for r in basic.results.values())
    overhead = (basic_s - startup_s - training_s) / n_jobs
    same = {k: r["weight"] for k, r in basic.results.items()} == {k: r["weight"] for k, r in joblib.results.items()}
    return [
        Row(
            f"{n_jobs}-job grid, basic launcher, overhead per job",
            overhead,
            0.3,
            "s/job",
            "<= 1",
            note=f"sweep {basic_s:.1f} s = start-up {startup_s:.1f} s + training {training_s:.1f} s + overhead",
        ),
        Row(
            f"{n_jobs}-job grid: basic / joblib (2 workers)",
            basic_s,
            joblib_s,
            "s",
            ">= 1.3",
            note=f"identical results: {same}; each joblib worker pays its own start-up",
        ),
        Row(f"{n_jobs}-job grid, basic launcher vs plain script", basic_s, plain_s, "s", "-"),
    ]


if __name__ == "__main__":
    from measure import print_table

    print_table(run(quick="--quick" in sys.argv))
