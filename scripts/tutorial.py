"""Run the seed notebook's cells: `python scripts/tutorial.py numpy`, or `all` for every cell in order."""

import argparse
import inspect
import sys
import typing

from linreg.tutorial import CELLS


def cell_options() -> dict[str, tuple[type, list[str]]]:
    """Every argument a cell takes, with its type (from its default) and the cells that take it: the command's
    options are read from the cells, so that each option a cell lists is one the command accepts."""
    options: dict[str, tuple[type, list[str]]] = {}
    for name, cell in CELLS.items():
        for parameter in inspect.signature(cell, eval_str=True).parameters.values():
            kinds = [k for k in typing.get_args(parameter.annotation) or [parameter.annotation] if k is not type(None)]
            options.setdefault(parameter.name, (kinds[0], []))[1].append(name)  # `int | None`: an int
    return options


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("cell", choices=[*CELLS, "all"], help="which cell to run")
    for name, (kind, cells) in cell_options().items():
        flag, where = "--" + name.replace("_", "-"), f"({', '.join(cells)})"
        if kind is bool:
            parser.add_argument(flag, action="store_true", default=None, help=where)
        else:
            parser.add_argument(flag, type=kind, help=f"{name.replace('_', ' ')} {where}")
    args = parser.parse_args()
    given = {key: value for key, value in vars(args).items() if key != "cell" and value is not None}
    names = list(CELLS) if args.cell == "all" else [args.cell]
    for name in names:
        cell = CELLS[name]
        accepted = inspect.signature(cell).parameters
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
