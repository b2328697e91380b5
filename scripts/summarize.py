"""Rebuild a sweep's summary files: `python scripts/summarize.py <sweep folder>`.

summary.csv, summary.md, summary.png, and summary_by_config.csv where seeds repeat the configurations.

For a sweep that was interrupted, or one whose summary you deleted; a finished sweep writes its own.
"""

import argparse
import sys
from pathlib import Path

from linreg.record import OBJECTIVES
from linreg.sweep import BY_CONFIG_FILE, summarize


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dir", type=Path, help="a multirun folder, e.g. outputs/multirun/<date>/<time>")
    parser.add_argument("--by", choices=OBJECTIVES, default="val_mse", help="the metric that ranks the jobs")
    args = parser.parse_args()
    if not args.sweep_dir.is_dir():
        print(f"error: sweep_dir: no such folder '{args.sweep_dir}'; expected a multirun folder", file=sys.stderr)
        return 2
    text, rows = summarize(args.sweep_dir, args.by)
    if not rows:
        print(f"error: sweep_dir: '{args.sweep_dir}' holds no job folders (none has a .hydra/)", file=sys.stderr)
        return 2
    print(text, end="")
    by_config = f"{BY_CONFIG_FILE}, " if (args.sweep_dir / BY_CONFIG_FILE).is_file() else ""
    print(f"wrote summary.csv, {by_config}summary.md and summary.png in {args.sweep_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
