"""Run a Celery task: on real workers with REDIS_URL, in-process otherwise.

On the embedded default there is no broker; the same task code runs on a small
thread pool inside the web process, after the enqueuing transaction commits.
"""

from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.db import close_old_connections, transaction

_pool = None


def _run_inline(task, args, kwargs):
    close_old_connections()
    try:
        task.apply(args=args, kwargs=kwargs, throw=False)
    finally:
        close_old_connections()


def enqueue(task, *args, **kwargs):
    """Queue `task(*args, **kwargs)` once the current transaction commits."""
    global _pool
    if settings.EMBEDDED:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="inprocess-worker")
        transaction.on_commit(lambda: _pool.submit(_run_inline, task, args, kwargs))
    else:
        transaction.on_commit(lambda: task.apply_async(args=args, kwargs=kwargs))
