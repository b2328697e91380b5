"""The batched launcher's targets (issue 28): an lr sweep of the default run (seed data, 1000 steps) as one
batched run, against one default run's wall time: at most 2x for 32 points, 3x for 128; the basic launcher's
same sweeps beside them for scale.

The 128-point basic sweep takes minutes: it is measured once in the full run and extrapolated from the
32-point one in the quick run (the row's note says which).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from measure import Row, interpreter, train_command, wall_time


def _lrs(points: int) -> str:
    """`points` learning rates from 0.001 up to just below the stability limit (0.1198), evenly on a log scale."""
    return ",".join(f"{0.001 * (0.119 / 0.001) ** (i / (points - 1)):.6g}" for i in range(points))


def run(quick: bool, python: str | None = None) -> list[Row]:
    python = interpreter(python)
    with tempfile.TemporaryDirectory() as tmp:
        counter = iter(range(1000))

        def seconds(*overrides: str) -> float:
            folder = Path(tmp) / f"run{next(counter)}"
            folder.mkdir()
            return wall_time(train_command(*overrides, python=python), folder)

        one = min(seconds() for _ in range(1 if quick else 3))
        batched_32 = seconds("-m", "hydra/launcher=batched", f"lr={_lrs(32)}")
        batched_128 = seconds("-m", "hydra/launcher=batched", f"lr={_lrs(128)}")
        basic_32 = seconds("-m", f"lr={_lrs(32)}")
        if quick:
            basic_128, how = one + (basic_32 - one) * 127 / 31, "extrapolated from the 32-point sweep's cost per job"
        else:
            basic_128, how = seconds("-m", f"lr={_lrs(128)}"), "measured once"
    return [
        Row("32-point lr sweep, batched launcher vs one run", batched_32, one, "s", "<= 2"),
        Row("128-point lr sweep, batched launcher vs one run", batched_128, one, "s", "<= 3"),
        Row("32-point lr sweep, basic launcher vs one run", basic_32, one, "s", "-"),
        Row("128-point lr sweep, basic launcher vs one run", basic_128, one, "s", "-", note=how),
    ]


if __name__ == "__main__":
    from measure import print_table

    print_table(run(quick="--quick" in sys.argv))
