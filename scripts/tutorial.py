"""Run the seed notebook's cells: `python scripts/tutorial.py numpy`, or `all` for every cell in order."""

import argparse
import inspect
import sys

from linreg.tutorial import CELLS


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("cell", choices=[*CELLS, "all"], help="which cell to run")
    parser.add_argument("--lr", type=float, help="learning rate (numpy, autograd-loop, nn-loop)")
    parser.add_argument("--iters", type=int, help="iterations (numpy, autograd-loop, nn-loop)")
    parser.add_argument("--seed", type=int, help="random seed (autograd, no-grad, nn-loop)")
    parser.add_argument(
        "--true-gradient",
        action="store_true",
        help="numpy: average the gradient over samples (the notebook sums)",
    )
    args = parser.parse_args()
    options = {
        "lr": args.lr,
        "iters": args.iters,
        "seed": args.seed,
        "true_gradient": args.true_gradient or None,
    }
    names = list(CELLS) if args.cell == "all" else [args.cell]
    for name in names:
        cell = CELLS[name]
        accepted = inspect.signature(cell).parameters
        given = {key: value for key, value in options.items() if value is not None}
        if args.cell != "all" and (unknown := sorted(set(given) - set(accepted))):
            parser.error(
                f"cell '{name}' takes no --{unknown[0].replace('_', '-')}; it takes: "
                + ", ".join("--" + p.replace("_", "-") for p in accepted)
            )
        print(f"## {name}")
        print("\n".join(cell(**{k: v for k, v in given.items() if k in accepted}).lines))
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
