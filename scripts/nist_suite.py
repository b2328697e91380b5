"""Train every NIST StRD linear set through the training command and print docs/nist.md's table: `python
scripts/nist_suite.py`.

Each set of tests/data/nist/ (or --sets) is written as a CSV beside its run and trained as a user would:
`python scripts/train.py data=csv data.source.path=<csv> data.source.val_fraction=0 data.source.test_fraction=0
+trainer.precision=64-true data.standardize=whiten lr=0.5 iters=200`, with `model.bias=false` for a set whose
model has no intercept. The table gives, per set, the fewest correct digits over its coefficients (NIST's log
relative error against the certified values) of what gradient descent trained and of the optimum the run
reports, the steps and the seconds of training. Everything goes into --out (default outputs/nist/<date>/<time>).
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from linreg import least_squares, nist
from linreg.errors import InvalidInput

REPO = Path(__file__).resolve().parent.parent
TRAIN = REPO / "scripts" / "train.py"
# The command's overrides for every set; a set without intercept adds model.bias=false.
OVERRIDES = [
    "data.source.val_fraction=0",
    "data.source.test_fraction=0",
    "+trainer.precision=64-true",
    "data.standardize=whiten",
    "lr=0.5",
    "iters=200",
]
DIFFICULTY = {"Lower": 0, "Average": 1, "Higher": 2}
HEADER = (
    "| set | NIST difficulty | coefficients | rows | condition number, standardized | condition number, whitened "
    "| digits, trained | digits, optimum | steps | training s |"
)


def standardized_condition_number(reference: nist.ReferenceSet) -> float:
    """What per-column scaling leaves of the design's conditioning (data.standardize=true): why Filip needs more."""
    import torch

    from linreg.standardization import Standardization

    x, y = torch.from_numpy(reference.x), torch.from_numpy(reference.y).unsqueeze(1)
    scaled = Standardization.of(x, y, centre=reference.intercept).inputs(x)
    return least_squares.condition_number(scaled, intercept=reference.intercept)


def train(reference: nist.ReferenceSet, folder: Path) -> dict:
    """The set trained by scripts/train.py in `folder`/run; its record."""
    folder.mkdir(parents=True)
    csv = reference.write_csv(folder / f"{reference.name}.csv")
    overrides = ["data=csv", f"data.source.path={csv}", *OVERRIDES]
    overrides += [] if reference.intercept else ["model.bias=false"]
    command = [sys.executable, str(TRAIN), *overrides, f"hydra.run.dir={folder / 'run'}"]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{reference.name}: {' '.join(command)} failed:\n{done.stderr}")
    return json.loads((folder / "run" / "results.json").read_text())


def row(reference: nist.ReferenceSet, record: dict) -> str:
    bias = record.get("bias", [None])[0]
    trained = nist.digits_reached(reference, record["weight"][0], bias)
    optimum = nist.digits_reached(reference, record["optimum_weight"][0], record.get("optimum_bias", [None])[0])
    cells = [
        reference.name,
        reference.difficulty,
        str(len(reference.certified)),
        str(len(reference.y)),
        f"{standardized_condition_number(reference):.2g}",
        f"{record['condition_number']:.6f}",
        f"{min(trained.values()):.1f}",
        f"{min(optimum.values()):.1f}",
        str(record["steps"]),
        f"{record['fit_s']:.2f}",
    ]
    return "| " + " | ".join(cells) + " |"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", type=Path, default=REPO / "tests" / "data" / "nist", help="a folder of .dat files")
    parser.add_argument("--out", type=Path, default=Path("outputs/nist") / time.strftime("%Y-%m-%d/%H-%M-%S"))
    args = parser.parse_args()
    try:
        references = sorted(map(nist.read, args.sets.glob("*.dat")), key=lambda r: (DIFFICULTY[r.difficulty], r.name))
    except InvalidInput as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if not references:
        print(f"error: --sets: no .dat file in '{args.sets}'; expected NIST StRD linear sets", file=sys.stderr)
        return 2
    if args.out.exists():
        print(f"error: --out: '{args.out}' exists; expected a new folder", file=sys.stderr)
        return 2
    print(HEADER)
    print("|" + "---|" * HEADER.count(" | ") + "---|")
    for reference in references:
        print(row(reference, train(reference, args.out / reference.name)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
