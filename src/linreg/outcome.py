"""How a run ended: the status a finished fit means, and the status an exception means, decided by its type.

A fit that returns ended in one of four ways (`ending`); a run that raises once its record is started leaves
results.json failed with the error, never running (`failures_recorded`).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import lightning as L
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.callbacks import Timer
from lightning.pytorch.utilities import rank_zero_only

from linreg.errors import InvalidInput
from linreg.interrupt import GracefulInterrupt
from linreg.loss_monitor import LossMonitor
from linreg.record import Record, Status, write_failure


def is_global_zero() -> bool:
    """True in the process that writes files and prints (the only one, unless under DDP)."""
    return rank_zero_only.rank == 0


def ending(trainer: L.Trainer, iters: int, monitor: LossMonitor, interrupt: GracefulInterrupt) -> dict[str, Any]:
    """How training ended: ok only when it reached `iters`; otherwise what stopped it, and why."""
    return ended(
        trainer.global_step, iters, monitor.last_loss, monitor.diverged_at_step, interrupt.received,
        lambda: stopped_by(trainer),
    )  # fmt: skip


def ended(
    steps: int,
    iters: int,
    last_loss: float | None,
    diverged_at_step: int | None,
    received: signal.Signals | None,
    stopped_by: Callable[[], dict[str, str]],
) -> dict[str, Any]:
    """The record's status keys for a run that took `steps` of its `iters` (a batched member's too): diverged,
    ok, interrupted by the signal `received`, or stopped early (`stopped_by` says by whom)."""
    result: dict[str, Any] = {"interrupted_by": None, "stopped_by": None, "stop_reason": None}
    if diverged_at_step is not None:
        reason = f"the loss became {last_loss} at step {diverged_at_step}"
        result.update(status=Status.DIVERGED, stop_reason=reason)
    elif steps >= iters:  # a signal during the wrap-up does not undo a finished run
        result.update(status=Status.OK)
    elif received:
        result.update(status=Status.INTERRUPTED, interrupted_by=received.name)
    else:
        result.update(status=Status.STOPPED, **stopped_by())
    return {**result, "diverged_at_step": diverged_at_step}


def stopped_by(trainer: L.Trainer) -> dict[str, str]:
    """Who ended training before `iters`: an early-stopping callback or the Trainer's time limit say why."""
    for callback in trainer.callbacks:
        message = getattr(callback, "stopping_reason_message", None)  # EarlyStopping's own account
        if message:
            return {"stopped_by": type(callback).__name__, "stop_reason": message.strip()}
        if isinstance(callback, Timer) and (callback.time_remaining() or 0) <= 0:
            return {"stopped_by": "trainer.max_time", "stop_reason": "the Trainer's time limit ran out"}
    return {"stopped_by": "a callback or a Trainer argument", "stop_reason": "trainer.should_stop was set"}


@contextlib.contextmanager
def failures_recorded(run_dir: Path, record: Record) -> Iterator[None]:
    """A run that fails once its record is started leaves it failed with the error: a failed write (no space
    left, a read-only folder), a setting Lightning refuses only while running, or anything else.

    By type: an OSError is re-raised as itself (the CLI words it as one line), Lightning's refusal of a setting
    becomes `InvalidInput` (`_refused_by_lightning`), the rest is re-raised. Loggers write
    from threads of their own (TensorBoard's event writer): their failed writes are caught here too, instead of
    being printed as a thread's traceback while the run reports success.
    """
    thread_faults: list[OSError] = []
    previous_hook = threading.excepthook

    def note_thread_fault(args: threading.ExceptHookArgs) -> None:
        if isinstance(args.exc_value, OSError):
            thread_faults.append(args.exc_value)
        else:
            previous_hook(args)

    threading.excepthook = note_thread_fault
    try:
        yield
        if thread_faults:
            raise thread_faults[0]
    except Exception as error:
        fault = _os_error_behind(error)
        reason = (str(error).strip().splitlines() or [""])[0]
        if is_global_zero():
            failure = (
                f"{fault.filename or run_dir}: {fault.strerror or fault}"
                if fault
                else f"{type(error).__name__}: {reason}"
            )
            write_failure(run_dir, record, failure)
        if fault is not None:
            raise fault from None
        if _refused_by_lightning(error):
            raise InvalidInput(f"trainer: Lightning stopped the run: {reason}") from None
        raise
    finally:
        threading.excepthook = previous_hook


def _refused_by_lightning(error: Exception) -> bool:
    """Lightning refusing a setting it checks only while running: its MisconfigurationException, or a ValueError,
    TypeError or RuntimeError raised by Lightning's own code (EarlyStopping's check of its metric, say), told
    by the module that raised it; the same types raised anywhere else are faults, and re-raised."""
    if isinstance(error, MisconfigurationException):
        return True
    frame = error.__traceback__
    while frame is not None and frame.tb_next is not None:
        frame = frame.tb_next
    module = frame.tb_frame.f_globals.get("__name__", "") if frame is not None else ""
    return isinstance(error, ValueError | TypeError | RuntimeError) and module.startswith("lightning.")


def _os_error_behind(error: BaseException) -> OSError | None:
    """The failed write behind an error, if any: Lightning's loggers wrap one in a ValueError."""
    while error is not None and not isinstance(error, OSError):
        error = error.__cause__ or error.__context__
    return error
