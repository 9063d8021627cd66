"""Thin Celery tasks for the data lifecycle (scheduled in CELERY_BEAT_SCHEDULE; see streams/retention.py)."""

from celery import shared_task


@shared_task(name="streams.retention_downsample")
def retention_downsample():
    from .retention import downsample

    return downsample()


@shared_task(name="streams.retention_partitions")
def retention_partitions():
    from .retention import maintain_partitions

    return maintain_partitions()


@shared_task(name="streams.retention_nightly")
def retention_nightly():
    from .retention import nightly

    return nightly()
