"""Retrying a write the database refused for a moment (SQLite "database is locked", a dropped connection).

Only for writes that must land because something already happened outside the database (the program
output was switched): each attempt is its own transaction, so a retry never half-applies one.
"""

import logging
import time

from django.db import OperationalError, close_old_connections, connection

logger = logging.getLogger(__name__)


class StillFailing(Exception):
    """Every attempt failed; `__cause__` is the last error."""


def retry_write(fn, *args, attempts=5, first_delay_s=0.1, **kwargs):
    """fn(*args, **kwargs), retried on OperationalError with doubling pauses (0.1 s, 0.2 s, ... by default)."""
    delay = first_delay_s
    for attempt in range(1, attempts + 1):
        try:
            return fn(*args, **kwargs)
        except OperationalError as exc:
            if connection.in_atomic_block:
                raise  # the caller's transaction is broken; only the caller can start again
            logger.warning("write %s failed (attempt %s of %s): %s", getattr(fn, "__name__", fn), attempt,
                           attempts, exc)
            if attempt == attempts:
                raise StillFailing(str(exc)) from exc
            close_old_connections()
            time.sleep(delay)
            delay *= 2
