"""Predictions from a trained run: `python scripts/predict.py <run folder or .ckpt> 5 6`.

The model is rebuilt through the class its run recorded (`linreg.checkpoint.load_model`), so any model
trained here predicts: the notebook's linear one, the MLP, or one of yours.

Each input is one sample: a number, or comma-separated numbers for a model with several features.

What needs no torch is checked first, before torch's import (about 1 s): the inputs are numbers, the
checkpoint exists, its run did not diverge. Only the number of features per sample waits for the model.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from pathlib import Path

from linreg import record
from linreg.checkpoint import load_model
from linreg.checks import FLOAT32_MAX
from linreg.errors import InvalidInput
from linreg.record import CHECKPOINT, RESULTS_FILE, Status


def checkpoint_path(target: str | Path) -> Path:
    """A run folder stands for its last checkpoint; anything else is taken as the checkpoint file itself."""
    target = Path(target)
    return target / CHECKPOINT if target.is_dir() else target


def parse_inputs(texts: Sequence[str]) -> list[list[float]]:
    """The samples as rows of numbers, refusing non-numbers and numbers the model's float32 cannot hold."""
    rows = []
    for text in texts:
        try:
            row = [float(value) for value in text.split(",")]
        except ValueError:
            raise InvalidInput(f"x: '{text}' is not a number or a comma-separated list of numbers") from None
        if not all(math.isfinite(value) for value in row):
            raise InvalidInput(f"x: '{text}' is not finite; expected finite numbers")
        if any(abs(value) > FLOAT32_MAX for value in row):  # the model computes in float32: it would read inf
            raise InvalidInput(f"x: '{text}' is beyond float32's range; expected magnitudes below {FLOAT32_MAX:.3g}")
        rows.append(row)
    return rows


def require_features(texts: Sequence[str], rows: Sequence[Sequence[float]], n_features: int) -> None:
    """Every sample has the model's number of features (known once the checkpoint is read)."""
    for text, row in zip(texts, rows, strict=True):
        if len(row) != n_features:
            raise InvalidInput(
                f"x: '{text}' has {len(row)} value(s); the model expects {n_features} feature(s) per sample"
            )


def refuse_diverged_run(path: Path) -> None:
    """A checkpoint of a run that diverged holds weights that predict nothing (1e21 for f(5)): refused, as its
    results.json beside `checkpoints/` says."""
    run_dir = path.parent.parent
    if path.parent.name != CHECKPOINT.parent.name or not (run_dir / RESULTS_FILE).is_file():
        return
    if record.read_status(run_dir) == Status.DIVERGED:
        reason = record.read(run_dir).get("stop_reason") or "its loss became inf"
        raise InvalidInput(
            f"checkpoint: the run in '{run_dir}' diverged ({reason}), "
            "so its weights predict nothing; expected a run that finished, e.g. trained again with a smaller lr"
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", help="a run folder (uses its checkpoints/last.ckpt) or a .ckpt file")
    parser.add_argument("x", nargs="+", help="one sample each: a number, or numbers separated by commas")
    args = parser.parse_args(argv)
    try:
        rows = parse_inputs(args.x)
        path = checkpoint_path(args.checkpoint)
        refuse_diverged_run(path)
        model = load_model(path)  # says a missing file before torch's import
        require_features(args.x, rows, model.hparams.in_features)
    except InvalidInput as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    import torch  # imported by load_model already

    with torch.no_grad():
        y = model(torch.tensor(rows, dtype=model.dtype))
    for text, prediction in zip(args.x, y.tolist(), strict=True):
        values = ", ".join(f"{value:.3f}" for value in prediction)
        print(f"f({text}) = {values}")
    return 0
