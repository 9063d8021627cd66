"""Thin Celery tasks: look up by id, call a service."""

import threading

from celery import shared_task
from django.conf import settings
from django.db import close_old_connections, transaction


@shared_task(name="incidents.check_lines_down")
def check_lines_down_task():
    from .services import check_lines_down

    return [i.pk for i in check_lines_down()]


def schedule_line_down_check(alert_id):
    """Re-check after the threshold whether the line is still down (after commit)."""
    from .services import line_down_threshold_s

    delay = line_down_threshold_s() + 1
    if settings.EMBEDDED:
        def run():
            close_old_connections()
            try:
                check_lines_down_task.apply()
            finally:
                close_old_connections()

        def start():
            timer = threading.Timer(delay, run)
            timer.daemon = True
            timer.start()

        transaction.on_commit(start)
    else:
        transaction.on_commit(lambda: check_lines_down_task.apply_async(countdown=delay))


@shared_task(name="incidents.deliver_page")
def deliver_task(delivery_id):
    from .paging import attempt_delivery

    log = attempt_delivery(delivery_id)
    return None if log is None else log.ok


@shared_task(name="incidents.paging_tick")
def paging_tick_task():
    from .paging import paging_tick

    return paging_tick()
