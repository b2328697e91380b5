"""Ctrl+C (SIGINT) or `kill` / a cluster's preemption (SIGTERM) ends training cleanly after the current step.

Without this, Lightning turns Ctrl+C into `sys.exit(1)` and SIGTERM into an exception: the run's last steps
and its results would be lost. Here the step finishes, the checkpoint is saved, `results.json` says
interrupted (`Status.INTERRUPTED`), and `resume=<run folder>` continues the run.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any

import lightning as L
from lightning.pytorch.utilities.exceptions import SIGTERMException

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class GracefulInterrupt(L.Callback):
    """Turns SIGINT and SIGTERM into `trainer.should_stop`; `received` names the signal.

    The handlers are installed for as long as the run's record is being made (`with interrupt:` in
    `linreg.train`), not only while `fit` runs: a signal during the final validation, the checkpoint or the
    writing of results.json is noted, and the record is finished before the process exits.
    """

    def __init__(self) -> None:
        self.received: signal.Signals | None = None
        self._previous: dict[signal.Signals, Any] = {}

    def __enter__(self) -> GracefulInterrupt:
        if threading.current_thread() is threading.main_thread():  # only the main thread may set handlers
            for signum in SIGNALS:
                if signal.getsignal(signum) is not signal.SIG_IGN:  # `cmd &` in a script ignores SIGINT: keep it so
                    self._previous[signum] = signal.signal(signum, self._note)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def _reinstall(self, *args: Any) -> None:
        """Lightning's fit and validate install a SIGTERM handler of their own, whose loops then raise an
        exception: ours is put back on top (Lightning restores ours, from before, when it ends)."""
        for signum in self._previous:
            signal.signal(signum, self._note)

    on_train_start = on_validation_start = on_test_start = _reinstall

    @contextlib.contextmanager
    def lightnings_sigterm_noted(self) -> Iterator[None]:
        """Around `fit` and `validate`: a SIGTERM that reaches Lightning's own handler (it installs one when they
        start, before our hooks can put ours back) ends them with SIGTERMException; it is noted like ours."""
        try:
            yield
        except SIGTERMException:
            self.received = self.received or signal.SIGTERM

    def _note(self, signum: int, frame: Any) -> None:
        self.received = signal.Signals(signum)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx) -> None:
        # Under DDP only the process that got the signal knows: every rank must stop at the same step.
        if trainer.strategy.reduce_boolean_decision(self.received is not None, all=False):
            trainer.should_stop = True
