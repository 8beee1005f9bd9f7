"""Stopping a run on Ctrl-C (SIGINT) or SIGTERM without losing what it has learnt.

While `Trainer.fit` writes a run folder, the first SIGINT or SIGTERM only sets a flag: the
step in progress finishes, a checkpoint is written (atomically, as every checkpoint is) and
TrainingInterrupted says which step a resume starts from. A second signal stops at once.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class TrainingInterrupted(Exception):
    """The run stopped on a signal after writing a checkpoint; `exit_status` is the shell's
    convention for that signal (130 for SIGINT, 143 for SIGTERM)."""

    def __init__(self, signum: int, step: int, checkpoint: Path, out: Path):
        self.signum, self.step, self.checkpoint, self.out = signum, step, checkpoint, out
        self.exit_status = 128 + signum
        super().__init__(
            f"stopped by {signal.Signals(signum).name} after step {step}; checkpoint "
            f"{checkpoint} written; `minigan train --resume {out}` continues from step {step}"
        )


class StopSignals:
    """From construction until `restore()`, SIGINT and SIGTERM set `signum` instead of
    stopping the program. Handlers can only be installed from the main thread: elsewhere,
    or with enabled=False (nothing to checkpoint into), the signals keep their usual effect."""

    def __init__(self, enabled: bool = True):
        self.signum: int | None = None
        self._previous = {}
        if enabled and threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._handle) for s in STOP_SIGNALS}

    def _handle(self, signum, frame) -> None:
        if self.signum is not None:  # asked twice: stop now, without a checkpoint
            raise KeyboardInterrupt
        self.signum = signum

    def restore(self) -> None:
        """Put the handlers that were there before back."""
        for signum, old in self._previous.items():
            signal.signal(signum, old if old is not None else signal.SIG_DFL)
        self._previous = {}
