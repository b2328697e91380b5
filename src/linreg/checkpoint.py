"""Reading a run's checkpoint safely, without Lightning: for `predict.py` and before a resume.

Every load uses `torch.load(weights_only=True)`, which unpickles tensors and plain containers only: a file
whose pickle would run code is refused before any of it runs. A damaged file, a file that is not a
checkpoint, or one whose weights do not fit its own hyperparameters is refused with one clear line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from linreg.errors import InvalidInput


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint's dict, holding at least `state_dict` and `hyper_parameters`."""
    path = Path(path)
    if not path.is_file():
        raise InvalidInput(f"checkpoint: no such file '{path}'; expected a .ckpt file written by a training run")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # UnpicklingError, RuntimeError, EOFError...: whatever the damage
        message = str(error).strip()
        if "Unsupported global" in message or "weights_only" in message:
            reason = "it holds objects that would run code when loaded, refused by weights_only=True"
        else:
            reason = message.splitlines()[0] if message else type(error).__name__
        raise InvalidInput(f"checkpoint: cannot load '{path}': {reason}") from None
    if not isinstance(checkpoint, dict) or not {"state_dict", "hyper_parameters"} <= checkpoint.keys():
        raise InvalidInput(f"checkpoint: '{path}' is not a checkpoint of this project's LinearRegression")
    return checkpoint


def linear_from_checkpoint(checkpoint: dict[str, Any], path: str | Path) -> nn.Linear:
    """The trained `nn.Linear` (the LightningModule's `linear`), shaped by the checkpoint's hyperparameters."""
    hparams = checkpoint["hyper_parameters"]
    prefix = "linear."
    state = {
        key.removeprefix(prefix): value for key, value in checkpoint["state_dict"].items() if key.startswith(prefix)
    }
    try:
        linear = nn.Linear(int(hparams["in_features"]), int(hparams["out_features"]))
        linear.load_state_dict(state)
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        first_line = str(error).strip().splitlines()[0]
        raise InvalidInput(f"checkpoint: '{path}' does not fit LinearRegression: {first_line}") from None
    return linear
