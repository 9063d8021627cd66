"""Work a click causes but need not wait for (rendering live pushes, mirroring onto a timeline): run by one
thread per process after the transaction commits, in the order queued, so the response goes out first.

Each job runs with its own database connection; an exception is logged and never reaches the click.
"""

import atexit
import logging
import os
import queue
import threading

from asgiref.sync import SyncToAsync
from django.db import close_old_connections, connection, transaction

logger = logging.getLogger(__name__)

_jobs = None
_lock = threading.Lock()

# The write-latency bench sets this to time the old way (everything inside the request) as its baseline.
INLINE = False


def _worker(jobs):
    while True:
        fn, args, main_loop = jobs.get()
        # Sends from here reach the server's event loop as they would from the request's thread (the
        # in-memory channel layer's queues belong to that loop).
        SyncToAsync.threadlocal.main_event_loop = main_loop
        SyncToAsync.threadlocal.main_event_loop_pid = os.getpid() if main_loop is not None else None
        close_old_connections()
        try:
            fn(*args)
        except Exception:  # noqa: BLE001 - a deferred job must never take the thread down
            logger.exception("deferred job %s failed", getattr(fn, "__qualname__", fn))
        finally:
            close_old_connections()


def submit(fn, *args):
    """Run fn(*args) on the deferred thread now (not waiting for any transaction)."""
    global _jobs
    # Inside an outer transaction (a test's, whose on-commit callbacks run before it ends) another thread's
    # connection could not see this data yet: run here, as before.
    if INLINE or connection.in_atomic_block:
        try:
            fn(*args)
        except Exception:  # noqa: BLE001
            logger.exception("deferred job %s failed", getattr(fn, "__qualname__", fn))
        return
    with _lock:
        if _jobs is None:
            _jobs = queue.SimpleQueue()
            threading.Thread(target=_worker, args=(_jobs,), name="deferred", daemon=True).start()
    _jobs.put((fn, args, getattr(SyncToAsync.threadlocal, "main_event_loop", None)))


def after_commit(fn, *args):
    """Run fn(*args) on the deferred thread once the current transaction commits (never if it rolls back)."""
    transaction.on_commit(lambda: submit(fn, *args))


def drain(timeout=5.0):
    """Wait until every job queued so far has run (tests, and a process about to exit); False on timeout."""
    if _jobs is None:
        return True
    done = threading.Event()
    submit(done.set)  # one thread, in order: when this runs, everything queued before it has
    return done.wait(timeout)


atexit.register(drain, 2.0)  # a management command's last pushes and timeline entries are not lost
