"""Saying when Numba compiles, and how long it took.

The cpu kernels are compiled on first call and cached on disk (Numba's cache=True): the
first training step after an install waits seconds for the compiler, later runs load the
machine code. `CompileWatch` notices the compiler at work (Numba's "numba:compile" event,
which fires only when a kernel is compiled, not when it is loaded from the cache), says so
once per process, and counts the seconds, so that a progress bar can leave them out of its
rate.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

NOTICE = "compiling kernels (first run only)"

_announced = []  # once per process


class CompileWatch:
    """While active (`with CompileWatch(say):`, or between start() and stop()), counts
    the seconds spent compiling and calls `say(NOTICE)` at the first compilation of the
    process (no call when nothing is compiled, or when `say` is None). Without Numba it
    counts nothing."""

    def __init__(self, say: Callable[[str], None] | None = None):
        self.say = say
        self.seconds = 0.0  # compile time so far, nested compilations counted once
        self._taken = 0.0
        self._depth = 0
        self._started = 0.0
        self._listener = None

    def new_seconds(self) -> float:
        """Compile seconds since the previous call."""
        fresh, self._taken = self.seconds - self._taken, self.seconds
        return fresh

    # Numba reports each compilation as a start and an end event; compiling one function
    # compiles the functions it calls inside it (nested events).
    def _on_start(self) -> None:
        if self._depth == 0:
            self._started = time.perf_counter()
            if self.say is not None and not _announced:
                _announced.append(True)
                self.say(NOTICE)
        self._depth += 1

    def _on_end(self) -> None:
        self._depth -= 1
        if self._depth == 0:
            self.seconds += time.perf_counter() - self._started

    def start(self) -> CompileWatch:
        try:
            from numba.core import event
        except ImportError:
            return self
        watch = self

        class _Listener(event.Listener):
            def on_start(self, _event):
                watch._on_start()

            def on_end(self, _event):
                watch._on_end()

        self._listener = _Listener()
        event.register("numba:compile", self._listener)
        return self

    def stop(self) -> None:
        if self._listener is not None:
            from numba.core import event

            event.unregister("numba:compile", self._listener)
            self._listener = None

    def __enter__(self) -> CompileWatch:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def leave_out_of_rate(bar, seconds: float) -> None:
    """Shift a tqdm bar's clock by `seconds` (compile time): its rate and remaining-time
    estimate then count only training, not a one-time wait for the compiler."""
    if seconds > 0:
        bar.start_t += seconds
        bar.last_print_t += seconds


def say_above_bar(text: str) -> None:
    """Print a line on stderr above a tqdm progress bar (or as a plain line without one)."""
    from tqdm import tqdm

    tqdm.write(text, file=sys.stderr)
