"""Loaded (through PYTHONPATH) by processes the tests run under libfaketime with the monotonic
clock left alone.

libfaketime 0.9.10 rewrites the deadline of `clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME)`,
which `time.sleep` uses since Python 3.11, into a negative time (EINVAL; libfaketime issue 426).
Sleeping on a lock's timeout (a relative, monotonic wait that libfaketime does not touch)
sleeps exactly as long.
"""

import threading
import time


def _sleep(seconds: float) -> None:
    if seconds < 0:
        raise ValueError("sleep length must be non-negative")
    threading.Event().wait(seconds)


time.sleep = _sleep
