"""Thin Celery tasks: look the row up by id, call a service. Correctness lives in the database
(see services.py); a lost or duplicated task is repaired by the sweeper or inserts nothing."""

from celery import shared_task
from celery.signals import worker_process_init, worker_ready

from . import services


@shared_task(acks_late=True)
def issue_batch(batch_id):
    return services.run_batch(batch_id)


@shared_task(acks_late=True)
def close_draw(campaign_id):
    services.close_draw(campaign_id)


@shared_task(acks_late=True)
def notify_recipients(campaign_id):
    return services.notify_recipients(campaign_id)


@shared_task
def sweep():
    return services.sweep()


@worker_ready.connect
def start_sweeper(**kwargs):
    """Every worker sweeps (stuck batches, due draws) from its main process, every few seconds."""
    services.start_sweeper_thread()


@worker_process_init.connect
def warm_up(**kwargs):
    """Load the URLconf and the progress template when a pool process starts, not on its first batch
    (≈ 1 s of imports that would otherwise stall the first progress push of a campaign)."""
    from django.template.loader import get_template
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 - imports every app's views once
    get_template("compensation/campaign_detail.html")
