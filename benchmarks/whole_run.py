"""Target 1: `python scripts/train.py` (seed data, 1000 steps, TensorBoard and checkpoint on) against the
notebook's last cell run as a plain script with the same steps: at most 1.5x the wall time."""

from __future__ import annotations

import itertools
import sys
import tempfile
from pathlib import Path

from measure import REPO, Row, alternate, train_command, wall_time

HERE = Path(__file__).resolve().parent


def run(quick: bool) -> list[Row]:
    repeats = 1 if quick else 5
    with tempfile.TemporaryDirectory() as tmp:
        cwd, runs = Path(tmp), itertools.count()
        project, plain = alternate(
            lambda: wall_time(train_command(f"hydra.run.dir={tmp}/run{next(runs)}"), cwd),
            lambda: wall_time([sys.executable, str(HERE / "plain_notebook.py")], cwd),
            repeats,
        )
        lightning, torch_only = alternate(
            lambda: wall_time([sys.executable, "-c", "import linreg.train"], REPO),
            lambda: wall_time([sys.executable, "-c", "import torch; torch.optim.SGD([torch.zeros(1)], lr=0.1)"], REPO),
            repeats,
        )
    return [
        Row("whole run (seed data, 1000 steps)", project, plain, "s", "<= 1.5"),
        Row(
            "start-up: import linreg.train vs torch",
            lightning,
            torch_only,
            "s",
            "<= 1.5",
            note="Lightning imports torchmetrics (and with it scipy and matplotlib when installed) and torch._dynamo",
        ),
    ]


if __name__ == "__main__":
    from measure import print_table

    print_table(run(quick="--quick" in sys.argv))
