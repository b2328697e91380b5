"""Run the benchmarks and print the project against plain PyTorch, with each target: `make bench`.

`python benchmarks/run.py` is the full run (several minutes; medians of repeated, alternating runs);
`--quick` is a smoke run with small sizes and single repetitions; `--only step_cost,scale` picks some.
The figures are written to benchmarks/results/<full|quick>.json (<mode>-partial.json for a run of `--only` some).
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from pathlib import Path

import batched_sweeps
import growth
import scale
import step_cost
import sweeps
import whole_run
from measure import print_markdown, print_table, write_json

BENCHMARKS = {
    "whole_run": whole_run.run,
    "step_cost": step_cost.run,
    "scale": scale.run,
    "sweeps": sweeps.run,
    "batched_sweeps": batched_sweeps.run,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, one repetition: a smoke run")
    parser.add_argument("--only", default=",".join([*BENCHMARKS, "growth"]), help="comma-separated names")
    parser.add_argument(
        "--lean-python", help="the interpreter of the environment `make train` creates (make bench builds one)"
    )
    parser.add_argument("--out", type=Path, help="where to write the JSON (default: benchmarks/results/<mode>.json)")
    args = parser.parse_args()
    names = args.only.split(",")
    print("load average (1, 5, 15 min) at start: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    unknown = sorted(set(names) - {*BENCHMARKS, "growth"})
    if unknown:
        parser.error(f"unknown benchmark {unknown[0]}; expected some of {', '.join([*BENCHMARKS, 'growth'])}")
    benchmarks = {
        **BENCHMARKS,
        "whole_run": functools.partial(whole_run.run, lean_python=args.lean_python),
        "sweeps": functools.partial(sweeps.run, python=args.lean_python),
        "batched_sweeps": functools.partial(batched_sweeps.run, python=args.lean_python),
    }
    rows = [row for name in names if name in benchmarks for row in benchmarks[name](args.quick)]
    print_table(rows)
    print("\nas markdown (docs/performance.md's table):")
    print_markdown(rows)
    extra = {"mode": "quick" if args.quick else "full"}
    if "growth" in names:
        extra["growth"] = growth.run(args.quick)
        print("\n".join(growth.describe(extra["growth"])))
    # full.json is the record docs/performance.md's table is held to: a run of some benchmarks writes beside it
    partial = "" if set(names) >= {*BENCHMARKS, "growth"} else "-partial"
    path = args.out or Path(__file__).resolve().parent / "results" / f"{extra['mode']}{partial}.json"
    write_json(path, rows, extra)
    print("load average (1, 5, 15 min) at end: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
