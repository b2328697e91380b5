"""Which runs TensorBoard shows: `python scripts/open_tensorboard.py [folder]` (and `make tensorboard`).

TensorBoard's run list ticks only the first 40 runs of a log folder that holds more (its
`MAX_NUM_RUNS_TO_ENABLE_BY_DEFAULT`), so `--logdir outputs` after a few sweeps looks empty; and it keeps 10
images per tag and run unless told otherwise. So the default is the latest sweep (a sweep's jobs are the runs
a person compares), every fit picture is kept (`--samples_per_plugin images=1000`: a run draws about
log10(iters) + 2; `images=0`, documented as "all", serves none with tensorboard 2.21), and a folder with more
runs than TensorBoard ticks is said, with what to do.
"""

from __future__ import annotations

from pathlib import Path

TICKED_RUNS = 40  # TensorBoard's MAX_NUM_RUNS_TO_ENABLE_BY_DEFAULT
EVENTS = "events.out.tfevents.*"


def default_folder(outputs: Path) -> Path:
    """The latest sweep's folder (sweep folders are named by date and time), or all of `outputs` without one."""
    sweeps = sorted(path.parent for path in outputs.glob("multirun/*/*/multirun.yaml"))
    return sweeps[-1] if sweeps else outputs


def runs_in(folder: Path) -> list[Path]:
    """The folders TensorBoard lists as runs: those holding event files."""
    return sorted({path.parent for path in folder.rglob(EVENTS)})


def tensorboard_arguments(folder: Path, extra: list[str]) -> list[str]:
    """`tensorboard`'s command line for `folder`: every image kept, the user's own flags after ours."""
    return ["--logdir", str(folder), "--samples_per_plugin", "images=1000", *extra]


def notes(folder: Path, chosen: bool) -> list[str]:
    """What the user is shown before TensorBoard starts: what it shows, and when it ticks only some runs."""
    count = len(runs_in(folder))
    lines = [f"TensorBoard on {folder} ({count} runs)"]
    if not chosen:
        lines[0] += "; every run: python scripts/open_tensorboard.py outputs"
    if count > TICKED_RUNS:
        lines.append(
            f"note: TensorBoard ticks the first {TICKED_RUNS} of these {count} runs; type a sweep's folder name "
            "(its time, e.g. 15-18-11) in the runs filter and tick them together, or give that folder"
        )
    return lines
