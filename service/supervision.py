"""Worker processes that exit when the process that started them dies.

`travelrisk serve --workers N` runs a uvicorn supervisor that spawns N worker processes sharing the
listening socket. If the supervisor is killed without a chance to stop them (`kill -9`, the OOM killer),
orphaned workers would keep answering on the port and a new `serve` would fail with "address already in
use". Each worker therefore arms two guards as it starts:

- on Linux, `PR_SET_PDEATHSIG`: the kernel sends the worker SIGTERM the moment its parent dies, and
  uvicorn shuts down as on any SIGTERM (in-flight requests finish, then the process exits);
- everywhere, a watchdog thread that notices the parent is gone (the worker has been re-parented) and
  sends the same SIGTERM, then ends the process outright if a graceful shutdown has not finished in time.

This module imports nothing beyond the standard library, so that a worker can arm it before anything else.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import signal
import sys
import threading
import time

# The supervisor's pid, exported by `travelrisk serve` before it starts workers; a worker compares its
# parent against it (the kernel's parent-death signal alone cannot tell if the parent died before it was set).
SUPERVISOR_PID_ENV = "TRAVELRISK_SUPERVISOR_PID"

# prctl(2) option: the signal to receive when the parent dies.
_PR_SET_PDEATHSIG = 1

log = logging.getLogger("travelrisk.supervision")


def _set_parent_death_signal(signum: int) -> bool:
    """Ask the Linux kernel for `signum` when the parent dies; False where prctl is unavailable."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch_parent(parent_pid: int, interval: float, grace: float) -> None:
    while os.getppid() == parent_pid:
        time.sleep(interval)
    log.warning("supervisor %s is gone: worker %s shuts down", parent_pid, os.getpid())
    os.kill(os.getpid(), signal.SIGTERM)
    # uvicorn finishes in-flight requests within its graceful-shutdown timeout; past the grace period the
    # worker is stuck, and a stuck orphan holding the port is worse than an abrupt exit.
    time.sleep(grace)
    os._exit(1)


def exit_with_parent(interval: float = 0.5, grace: float = 15.0) -> bool:
    """Make this worker process exit when the supervisor that started it dies.

    Does nothing (and returns False) outside a worker of `travelrisk serve --workers N`, i.e. when
    `TRAVELRISK_SUPERVISOR_PID` is unset or names this very process. Returns True once armed.
    """
    raw = os.environ.get(SUPERVISOR_PID_ENV, "")
    if not raw.isdigit() or int(raw) == os.getpid():
        return False
    parent_pid = int(raw)
    _set_parent_death_signal(signal.SIGTERM)
    if os.getppid() != parent_pid:
        # The supervisor died before the signal was armed: nobody will send it now.
        os.kill(os.getpid(), signal.SIGTERM)
    threading.Thread(
        target=_watch_parent, args=(parent_pid, interval, grace), name="parent-watchdog", daemon=True
    ).start()
    return True
