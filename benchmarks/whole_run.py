"""Target 1: `python scripts/train.py` (seed data, 1000 steps, TensorBoard and checkpoint on) against the
notebook's last cell run as a plain script with the same steps, wall time from start to exit:

- in the environment `make train` creates (no Optuna extra, hence no scipy; `make bench` builds it as
  .venv-lean and passes it as `--lean-python`): at most 1.25x;
- the same, against the plain script given the project's start-up treatment (`--frozen-imports`): shown;
- in the full development environment (all extras: this interpreter): at most 1.5x;
- for scale, the floor of any Lightning project: the same cell as the smallest Lightning script
  (`lightning_notebook.py`) against the plain one;
- what issue 11's fit pictures add to it: at most 5%. Their seconds are measured in-process (a default run
  with and without `~callbacks.fit_pictures`, paired), since whole processes vary by more than that; the
  TensorBoard logger's and the validations' the same way, for where a run's time goes: the floor, plus what
  runs before Lightning's import, plus these, against the default run;
- where a run's time goes, as whole processes: the default run with its optional features off (no logger,
  pictures or progress bar; validation only at step 0 and the end, as results.json needs) is the project's
  minimum: the floor plus Hydra plus the run's record. Against the plain script it is the least that target 1
  can measure for a Hydra and Lightning project that keeps its records;
- target 5: a bad config value (`lr=abc`) ends in one line and exit status 2 within a second, since the
  config is checked before Lightning's import.

Whether scipy is importable in each environment is printed with its row, so that a figure says what it
measured: torchmetrics imports scipy whenever it is there.
"""

from __future__ import annotations

import itertools
import logging
import statistics
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

from measure import REPO, Row, interpreter, take_turns, train_command, wall_time

HERE = Path(__file__).resolve().parent
NO_GC = "import gc; gc.disable()"  # the start-up treatment of scripts/train.py, for both sides of the import row
PROBE = (
    "import importlib.util as u, pathlib; "
    "print(pathlib.Path(u.find_spec('linreg.cli').origin).resolve().parents[2], u.find_spec('scipy') is not None)"
)


def describe(python: str) -> tuple[str, bool]:
    """Where the interpreter's `linreg` comes from (it must be this checkout) and whether it has scipy."""
    checkout, has_scipy = subprocess.run(
        [python, "-c", PROBE], check=True, capture_output=True, text=True
    ).stdout.split()
    if Path(checkout) != REPO:
        raise SystemExit(f"{python} runs linreg from {checkout}, not from this checkout {REPO}")
    return f"{python} (scipy importable: {'yes' if has_scipy == 'True' else 'no'})", has_scipy == "True"


# Default features whose seconds are measured in-process, each as the default run against the run without it.
FEATURES = {
    "fit pictures": "~callbacks.fit_pictures",
    "TensorBoard logger": "logger=none",
    "validation every 100 steps": "trainer.val_check_interval=1000",  # then only at step 0 and at the end
}
# The default run less every optional feature, the project's minimum: what any run of it costs (Hydra, the checks,
# Lightning, the validations at step 0 and the end, the test, the checkpoint and results.json).
FEATURES_OFF = (*FEATURES.values(), "~callbacks.progress")


def feature_seconds(repeats: int) -> dict[str, float]:
    """What each of FEATURES adds to a default run, measured in-process, where no start-up noise hides it: the
    median of paired differences of the run's own seconds (`wall_s`) with and without it. A warm process:
    first-use costs (importing TensorBoard's writer, about 0.08 s) are not in these figures."""
    from measure import compose

    from linreg.train import train

    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore")
    with tempfile.TemporaryDirectory() as tmp:
        runs = itertools.count()

        def seconds(*overrides: str) -> float:
            return train(compose("~callbacks.progress", *overrides), Path(tmp) / f"run{next(runs)}")["wall_s"]

        def difference(pair: int, without: str) -> float:
            """One pair, in turn in either order, since the later run of a pair pays for the earlier's garbage."""
            if pair % 2:
                without_s = seconds(without)
                return seconds() - without_s
            return seconds() - seconds(without)

        seconds()  # warm-up: the first run in a process pays first-use costs the others do not
        return {
            name: statistics.median(difference(pair, without) for pair in range(repeats))
            for name, without in FEATURES.items()
        }


def run(quick: bool, lean_python: str | None = None) -> list[Row]:
    repeats = 1 if quick else 7  # the run-to-run spread here is 0.3 s: medians of 7
    lean = interpreter(lean_python)
    lean_env, lean_has_scipy = describe(lean)
    full_env, _ = describe(sys.executable)
    plain, smallest_lightning = str(HERE / "plain_notebook.py"), str(HERE / "lightning_notebook.py")
    with tempfile.TemporaryDirectory() as tmp:
        cwd, runs = Path(tmp), itertools.count()

        def project(python: str, *overrides: str) -> float:
            return wall_time(train_command(f"hydra.run.dir={tmp}/run{next(runs)}", *overrides, python=python), cwd)

        medians = take_turns(
            {
                "lean project": lambda: project(lean),
                "lean project, optional features off": lambda: project(lean, *FEATURES_OFF),
                "lean plain": lambda: wall_time([lean, plain], cwd),
                "lean smallest Lightning script": lambda: wall_time([lean, smallest_lightning], cwd),
                "lean plain, frozen imports": lambda: wall_time([lean, plain, "--frozen-imports"], cwd),
                "full project": lambda: project(sys.executable),
                "full plain": lambda: wall_time([sys.executable, plain], cwd),
                "lean import linreg.train": lambda: wall_time([lean, "-c", f"{NO_GC}; import linreg.train"], REPO),
                "lean bad value": lambda: wall_time(train_command("lr=abc", python=lean), cwd, returncode=2),
                "lean import torch": lambda: wall_time(
                    [lean, "-c", f"{NO_GC}; import torch; torch.optim.SGD([torch.zeros(1)], lr=0.1)"], REPO
                ),
            },
            repeats,
        )
    features = feature_seconds(repeats + 2)
    pictures_s = features["fit pictures"]
    before_lightning = medians["lean bad value"]  # Hydra's import and two compositions, the checks, the exit
    floor_and_hydra = medians["lean smallest Lightning script"] + before_lightning
    accounted = floor_and_hydra + sum(features.values())
    lean_note = f"make train's environment: {lean_env}"
    if lean_python is None or lean_has_scipy:
        lean_note += "; NOT the lean one: run `make bench`, which builds .venv-lean without the optuna extra"
    return [
        Row("whole run, make train's env (seed, 1000 steps)", medians["lean project"], medians["lean plain"], "s",
            "<= 1.25", note=lean_note),
        Row("the same vs plain script, frozen imports too", medians["lean project"],
            medians["lean plain, frozen imports"], "s", "-",
            note="the plain script with the project's start-up treatment (gc off while importing, then frozen)"),
        Row("whole run, full dev env (all extras)", medians["full project"], medians["full plain"], "s", "<= 1.5",
            note=f"full environment: {full_env}"),
        Row("floor: the smallest Lightning script vs plain", medians["lean smallest Lightning script"],
            medians["lean plain"], "s", "-",
            note="make train's environment; benchmarks/lightning_notebook.py: no Hydra, logger or callbacks"),
        Row("fit pictures: default run vs without them", medians["lean project"],
            medians["lean project"] - pictures_s, "s", "<= 1.05",
            note=f"the pictures' {pictures_s:.3f} s (in-process: the median of {repeats + 2} paired differences of "
            "a default run's wall_s with and without them) against make train's default run"),
        Row("TensorBoard logger: default run vs logger=none", medians["lean project"],
            medians["lean project"] - features["TensorBoard logger"], "s", "-",
            note=f"its {features['TensorBoard logger']:.3f} s in-process (as the pictures' row), and about 0.08 s "
            "more for importing its writer in a fresh process"),
        Row("validation every 100 steps vs at step 0 and the end", medians["lean project"],
            medians["lean project"] - features["validation every 100 steps"], "s", "-",
            note=f"its {features['validation every 100 steps']:.3f} s in-process, for 9 more validations"),
        Row("default run vs the floor + what the rows account for", medians["lean project"], accounted, "s", "-",
            note=f"the smallest Lightning script, plus the bad-value run ({before_lightning:.2f} s: start, Hydra's "
            "import and two compositions, the checks, exit), plus the pictures, logger and validations"),
        Row("minimum: default run, features off, vs plain", medians["lean project, optional features off"],
            medians["lean plain"], "s", "-",
            note="make train's environment, " + " ".join(FEATURES_OFF) + ": Hydra, the checks, Lightning, the "
            "validations at step 0 and the end, the test, the checkpoint, results.json; the least target 1 can "
            "measure for a run that keeps its record"),
        Row("minimum vs the floor + the bad-value run", medians["lean project, optional features off"],
            floor_and_hydra, "s", "-",
            note="the smallest Lightning script plus everything before Lightning's import; both sides count "
            "Python's start and exit, which the minimum pays once"),
        Row("default run vs the minimum", medians["lean project"], medians["lean project, optional features off"],
            "s", "-", note="the optional features as whole processes: the TensorBoard logger and its import, the "
            "fit pictures and matplotlib's drawing, validation every 100 steps, the progress callback"),
        Row("a bad value fails (lr=abc): seconds vs 1 s", medians["lean bad value"], 1.0, "s", "<= 1",
            note="make train's environment: from start to the one-line error and exit status 2, before Lightning's "
            "import"),
        Row("start-up: import linreg.train vs torch", medians["lean import linreg.train"],
            medians["lean import torch"], "s", "-",
            note="make train's environment, both without garbage collection while importing; Lightning imports "
            "torchmetrics (and matplotlib) and torch._dynamo"),
    ]  # fmt: skip


if __name__ == "__main__":
    from measure import print_table

    lean = next((arg.split("=", 1)[1] for arg in sys.argv[1:] if arg.startswith("--lean-python=")), None)
    print_table(run(quick="--quick" in sys.argv, lean_python=lean))
