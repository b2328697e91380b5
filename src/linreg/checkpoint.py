"""Loading a trained model from its checkpoint safely: for `predict.py` and for evaluation.

Every load uses `torch.load(weights_only=True)`, which unpickles tensors and plain containers only: a file
whose pickle would run code is refused before any of it runs. The model is rebuilt through the class the run
recorded (`model_class`, written by `Regression.on_save_checkpoint`), if that class is allowed
(`linreg.targets`), from the checkpoint's hyperparameters. A damaged file, a file that is not a checkpoint,
or one whose weights do not fit its own hyperparameters is refused with one clear line.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from linreg.errors import InvalidInput
from linreg.targets import allowed_class

if TYPE_CHECKING:
    from linreg.models import Regression

REQUIRED_KEYS = {"state_dict", "hyper_parameters", "model_class"}


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint's dict, holding at least `state_dict`, `hyper_parameters` and `model_class`."""
    path = Path(path)
    if not path.is_file():
        raise InvalidInput(f"checkpoint: no such file '{path}'; expected a .ckpt file written by a training run")
    import torch  # only now: a missing file is said without waiting for torch's import (about 1 s)

    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # UnpicklingError, RuntimeError, EOFError...: whatever the damage
        message = str(error).strip()
        with path.open("rb") as file:
            start = file.read(4)
        if "unsupported global" in message.lower():
            reason = "it holds objects that would run code when loaded, refused by weights_only=True"
        elif not start.startswith((b"PK\x03\x04", b"\x80")):  # torch.save writes a zip archive (old: a pickle)
            reason = "it is not a PyTorch checkpoint (neither a zip archive nor a pickle)"
        else:
            reason = message.splitlines()[0] if message else type(error).__name__
        raise InvalidInput(f"checkpoint: cannot load '{path}': {reason}; expected a .ckpt written by a run") from None
    if isinstance(checkpoint, dict) and "model_class" not in checkpoint and "hyper_parameters" in checkpoint:
        raise InvalidInput(
            f"checkpoint: '{path}' records no model_class: it was written by an older version of this project; "
            "expected a checkpoint of a run trained with this version"
        )
    if not isinstance(checkpoint, dict) or not checkpoint.keys() >= REQUIRED_KEYS:
        raise InvalidInput(
            f"checkpoint: '{path}' is not a checkpoint of this project; expected one holding {sorted(REQUIRED_KEYS)}"
        )
    return checkpoint


def load_model(path: str | Path) -> Regression:
    """The trained model in a checkpoint file, in eval mode, built by the class the run recorded."""
    return model_from_checkpoint(read_checkpoint(path), path).eval()


def model_from_checkpoint(checkpoint: dict[str, Any], path: str | Path) -> Regression:
    """The model a checkpoint (from `read_checkpoint`) holds: its recorded class, hyperparameters and weights."""
    from linreg.models import Regression  # imports Lightning: only once the file is known to be sound

    model_class = allowed_class("checkpoint: model_class", str(checkpoint["model_class"]))
    if not issubclass(model_class, Regression):
        raise InvalidInput(
            f"checkpoint: model_class {checkpoint['model_class']!r} is not a model; expected a subclass of "
            "linreg.models.Regression"
        )
    try:
        model = model_class(**checkpoint["hyper_parameters"])
        model.load_state_dict(checkpoint["state_dict"])
    except (TypeError, ValueError, RuntimeError) as error:
        first_line = str(error).strip().splitlines()[0]
        raise InvalidInput(f"checkpoint: '{path}' does not fit {model_class.__name__}: {first_line}") from None
    return model
