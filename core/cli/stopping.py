"""SIGTERM stops a command the way Ctrl-C does, even when the first KeyboardInterrupt lands where Python drops it.

Python runs a signal handler between any two bytecodes, also inside a finaliser (`__del__`, a weakref callback),
where an exception is printed as "ignored" and lost. The handler therefore also records the signal, and the
engine's stop check raises again at its next batch.
"""

from __future__ import annotations

import signal
import threading

received: list[int] = []


def stop_on_sigterm() -> object:
    """Make SIGTERM raise KeyboardInterrupt and be recorded; the previous handler, or None off the main thread."""
    received.clear()
    if threading.current_thread() is not threading.main_thread():
        return None

    def stop(signum: int, frame: object) -> None:
        received.append(signum)
        raise KeyboardInterrupt

    return signal.signal(signal.SIGTERM, stop)


def restore(previous: object) -> None:
    """Put back the handler stop_on_sigterm replaced."""
    if previous is not None:
        signal.signal(signal.SIGTERM, previous)


def raise_if_stopped() -> bool:
    """The engine's stop check: raise KeyboardInterrupt again if a SIGTERM came and work still goes on."""
    if received:
        raise KeyboardInterrupt
    return False
