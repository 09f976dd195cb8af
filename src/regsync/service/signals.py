"""The one signal handler of regsync's long-running work: the daemon (``regsync run``) and the commands that sync,
reconcile, resync and adopt.

The first SIGINT or SIGTERM only asks the work to stop at its next safe point (between batches: claims released,
the run recorded); a second one ends the process at once, exit code 128 + the signal's number (the outbox claims
are leases that expire, so nothing is lost). When the block ends the previous handlers come back.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

import structlog

log = structlog.get_logger(__name__)

#: The signals that ask regsync to stop.
STOP_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def stop_signals(stop: threading.Event, *, told: Callable[[str], None] | None = None) -> Iterator[None]:
    """While in the block, the first SIGINT or SIGTERM sets ``stop`` and installs :func:`hard` for the next one.

    Args:
        stop: the flag the work polls between its steps.
        told: called with the signal's name on the first signal (e.g. to tell a terminal's user); default: a log
            line.

    Only in the main thread (Python delivers signals there); elsewhere the block does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}

    def first(signum: int, _frame: Any) -> None:
        name = signal.Signals(signum).name
        if told is not None:
            told(name)
        else:
            log.info("stopping: finishing the current batch", signal=name)
        stop.set()
        for sig in previous:
            signal.signal(sig, hard)

    for sig in previous:
        signal.signal(sig, first)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def hard(signum: int, _frame: Any) -> None:
    """The handler of a second signal: end the process at once, exit code 128 + ``signum``."""
    log.warning("second signal: stopping at once", signal=signal.Signals(signum).name)
    os._exit(128 + signum)
