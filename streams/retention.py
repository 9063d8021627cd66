"""The data lifecycle: downsampling, partitions ahead of time, pruning, audit archiving (README "Retention").

Every job is idempotent and resumable: work happens in short transactions (a chunk of minutes, a batch of
rows, one partition) and a killed run leaves only whole steps done; the next run continues from the
`RetentionJob.watermark` or simply finds less to do. One run of a job at a time (a PostgreSQL advisory
lock; a process lock on the embedded default). What each run did is stored on its `RetentionJob` row,
logged, and exported on /metrics.

Pruning never removes rows an open case needs: windows from `hooks.retention_holds()` (incidents not yet
reviewed, campaigns not yet closed) keep their room's rows; on PostgreSQL a daily partition that overlaps a
window is kept whole until the case closes. Raw health samples are dropped only once downsampled.
"""

import logging
import threading
import time
import zlib
from datetime import timedelta, timezone as dt_timezone

from django.conf import settings
from django.db import OperationalError, connection, transaction
from django.db.models import Avg, Count, Max, Min, Q
from django.db.models.functions import Coalesce, TruncMinute
from django.utils import timezone

from . import hooks, partitions
from .models import (Alert, Announcement, ChatMessage, ControlAction, ControlActionArchive, HealthMinute,
                     HealthSample, HostCue, RetentionJob, ViewerSession)

logger = logging.getLogger(__name__)

DOWNSAMPLE_LAG = timedelta(minutes=2)  # samples arrive up to a few seconds late; a minute is closed after this
DOWNSAMPLE_CHUNK = timedelta(hours=1)
PARTITIONED = {"streams_healthsample": "at", "streams_healthminute": "minute"}
_local_locks = {}


def _pause():
    if settings.RETENTION_PAUSE_MS:
        time.sleep(settings.RETENTION_PAUSE_MS / 1000)


class _JobLock:
    """One run of a job at a time, across processes on PostgreSQL (advisory lock)."""

    def __init__(self, name):
        self.name, self.key = name, zlib.crc32(f"retention:{name}".encode())
        self.local = _local_locks.setdefault(name, threading.Lock())

    def __enter__(self):
        if not self.local.acquire(blocking=False):
            return False
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_try_advisory_lock(%s)", [self.key])
                if not cursor.fetchone()[0]:
                    self.local.release()
                    return False
        self.held = True
        return True

    def __exit__(self, *exc):
        if getattr(self, "held", False):
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(%s)", [self.key])
            self.local.release()


def run_job(name, fn, **kwargs):
    """Run `fn(job, **kwargs) -> report` under the job's lock; record, log and return its report."""
    with _JobLock(name) as acquired:
        if not acquired:
            logger.info("retention %s: already running elsewhere, skipped", name)
            return {"skipped": "running"}
        job, _ = RetentionJob.objects.get_or_create(name=name)
        started = time.monotonic()
        RetentionJob.objects.filter(pk=job.pk).update(started_at=timezone.now(), ok=None)
        try:
            report = fn(job, **kwargs)
        except Exception:
            RetentionJob.objects.filter(pk=job.pk).update(
                finished_at=timezone.now(), ok=False, seconds=time.monotonic() - started)
            logger.exception("retention %s failed", name)
            raise
        seconds = time.monotonic() - started
        RetentionJob.objects.filter(pk=job.pk).update(finished_at=timezone.now(), ok=True, seconds=seconds,
                                                      report=report)
        logger.info("retention %s: %s in %.1f s", name, report, seconds)
        return report


# --- Holds ----------------------------------------------------------------------------------------------


def holds(now=None):
    """[(room_id, start, end)] with the margin on both sides; an open end is "now"."""
    now = now or timezone.now()
    margin = timedelta(minutes=settings.RETENTION_HOLD_MARGIN_MIN)
    return [(room_id, start - margin, (end or now) + margin) for room_id, start, end in hooks.retention_holds()]


def _not_held(queryset, held, start_field, end_field=None):
    """Exclude rows of a held room overlapping its window: [start_field, end_field] (or the one instant)."""
    end_field = end_field or start_field
    for room_id, start, end in held:
        queryset = queryset.exclude(Q(room_id=room_id, **{f"{start_field}__lte": end, f"{end_field}__gte": start}))
    return queryset


def delete_in_batches(queryset):
    """Delete the rows of `queryset` a batch at a time, one short transaction each, walking the primary key
    upwards (old rows have low ids: each batch starts where the last one ended). Returns the count."""
    deleted, last = 0, 0
    model = queryset.model
    while True:
        with transaction.atomic():
            ids = list(queryset.filter(pk__gt=last).order_by("pk").values_list("pk", flat=True)
                       [:settings.RETENTION_BATCH_ROWS])
            if not ids:
                return deleted
            deleted += model.objects.filter(pk__in=ids).delete()[0]
        last = ids[-1]
        _pause()


# --- Downsampling ---------------------------------------------------------------------------------------


def _minute_aggregates(start, end):
    """SELECT of HealthMinute rows for samples in [start, end): columns in HealthMinute's insert order."""
    metrics = {}
    for metric in HealthMinute.METRICS:
        metrics[f"{metric}_min"] = Min(metric)
        metrics[f"{metric}_mean"] = Avg(metric)
        metrics[f"{metric}_max"] = Max(metric)
    queryset = (HealthSample.objects.filter(at__gte=start, at__lt=end)
                .annotate(minute=TruncMinute("at", tzinfo=dt_timezone.utc)).values("room_id", "line_role", "minute")
                .annotate(samples=Count("id"), connected_samples=Count("id", filter=Q(connected=True)),
                          frozen_samples=Count("id", filter=Q(frozen=True)),
                          black_samples=Count("id", filter=Q(black=True)),
                          silent_samples=Count("id", filter=Q(silent=True)), **metrics)
                .order_by())
    columns = ["room_id", "line_role", "minute", "samples", "connected_samples", "frozen_samples", "black_samples",
               "silent_samples", *metrics]
    return columns, *queryset.query.sql_with_params()


def downsample_range(start, end):
    """Upsert the minute aggregates of [start, end) (one statement; rerunning it gives the same rows)."""
    columns, select_sql, params = _minute_aggregates(start, end)
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns[3:])
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {HealthMinute._meta.db_table} ({', '.join(columns)}) {select_sql} "
                       f"ON CONFLICT (room_id, line_role, minute) DO UPDATE SET {updates}", params)
        return cursor.rowcount


def _downsample(job, now=None):
    now = now or timezone.now()
    end = (now - DOWNSAMPLE_LAG).replace(second=0, microsecond=0)
    watermark = job.watermark
    if watermark is None:
        oldest = HealthSample.objects.order_by("at").values_list("at", flat=True).first()
        if oldest is None:
            return {"minutes": 0, "chunks": 0}
        watermark = oldest.replace(second=0, microsecond=0)
    minutes = chunks = 0
    while watermark < end:
        # Skip hours without samples (nights, a room off air) in one step.
        following = HealthSample.objects.filter(at__gte=watermark).order_by("at").values_list("at", flat=True).first()
        if following is None or following >= end:
            RetentionJob.objects.filter(pk=job.pk).update(watermark=end)
            watermark = end
            break
        watermark = max(watermark, following.replace(second=0, microsecond=0))
        chunk_end = min(watermark + DOWNSAMPLE_CHUNK, end)
        with transaction.atomic():
            minutes += downsample_range(watermark, chunk_end)
            RetentionJob.objects.filter(pk=job.pk).update(watermark=chunk_end)
        watermark, chunks = chunk_end, chunks + 1
        _pause()
    return {"minutes": minutes, "chunks": chunks, "watermark": watermark.isoformat()}


def downsample(now=None):
    return run_job("downsample", _downsample, now=now)


# --- Partitions -----------------------------------------------------------------------------------------


def _partitions(job, now=None):
    if connection.vendor != "postgresql":
        return {"partitioned": False}
    report = {}
    with connection.cursor() as cursor:
        for table in PARTITIONED:
            before = len(partitions.partitions(cursor, table))
            partitions.run_maintenance(cursor, table)
            children = partitions.partitions(cursor, table)
            report[table] = {"created": len(children) - before, "partitions": len(children),
                             "until": children[-1][2].isoformat() if children else None}
    return report


def maintain_partitions(now=None):
    return run_job("partitions", _partitions, now=now)


# --- Pruning --------------------------------------------------------------------------------------------


def _drop_partitions(table, column, cutoff, held):
    """Drop the partitions of `table` wholly older than `cutoff` that no hold overlaps.
    Returns (dropped, kept): kept for a hold, or left for the next run because the parent was busy."""
    dropped, kept = [], []
    with connection.cursor() as cursor:
        for name, lower, upper in partitions.partitions(cursor, table):
            if upper > cutoff:
                break
            if any(start < upper and end > lower for _room, start, end in held):
                kept.append(name)
                continue
            try:
                with transaction.atomic():
                    # Dropping a partition locks its parent: never queue live writers behind a long query.
                    cursor.execute("SET LOCAL lock_timeout = '5s'")
                    cursor.execute(f'DROP TABLE "{name}"')
            except OperationalError:
                logger.warning("retention: %s busy, not dropped this time", name)
                kept.append(name)
                continue
            dropped.append(name)
    return dropped, kept


def _prune_time_series(model, column, cutoff, held, report):
    table = model._meta.db_table
    if connection.vendor == "postgresql":
        dropped, kept = _drop_partitions(table, column, cutoff, held)
        report[table] = {"dropped_partitions": len(dropped), "held_partitions": len(kept)}
        # Rows outside every partition (the default one): a bounded delete.
        rows = delete_in_batches(_not_held(model.objects.filter(**{f"{column}__lt": cutoff}), held, column)
                                 .extra(where=[f"tableoid = '{partitions.default_partition(table)}'::regclass"]))
        report[table]["deleted_rows"] = rows
    else:
        rows = delete_in_batches(_not_held(model.objects.filter(**{f"{column}__lt": cutoff}), held, column))
        report[table] = {"deleted_rows": rows}


def _prune(job, now=None):
    now = now or timezone.now()
    held = holds(now)
    report = {"holds": len(held)}
    days = lambda n: now - timedelta(days=n)  # noqa: E731
    # Raw samples go only once summarised: never past the downsampling watermark.
    watermark = RetentionJob.objects.filter(name="downsample").values_list("watermark", flat=True).first()
    raw_cutoff = min(days(settings.RETENTION_HEALTH_RAW_DAYS), watermark or days(settings.RETENTION_HEALTH_RAW_DAYS))
    if watermark is None and HealthSample.objects.exists():
        raw_cutoff = None  # nothing summarised yet: keep every sample
    if raw_cutoff is not None:
        _prune_time_series(HealthSample, "at", raw_cutoff, held, report)
    _prune_time_series(HealthMinute, "minute", days(settings.RETENTION_HEALTH_MINUTE_DAYS), held, report)

    ended = Coalesce("left_at", "last_seen_at")
    sessions = ViewerSession.objects.annotate(ended=ended).filter(ended__lt=days(settings.RETENTION_PRESENCE_DAYS))
    report["streams_viewersession"] = {"deleted_rows": delete_in_batches(
        _not_held(sessions, held, "joined_at", "ended"))}
    for model, field, days_setting, extra in (
        (ChatMessage, "created_at", settings.RETENTION_CHAT_DAYS, {}),
        (Alert, "raised_at", settings.RETENTION_ALERT_DAYS, {"acknowledged_at__isnull": False}),
        (HostCue, "sent_at", settings.RETENTION_HOST_CUE_DAYS, {}),
        (Announcement, "pinned_at", settings.RETENTION_ANNOUNCEMENT_DAYS, {"unpinned_at__isnull": False}),
    ):
        old = model.objects.filter(**{f"{field}__lt": days(days_setting)}, **extra)
        report[model._meta.db_table] = {"deleted_rows": delete_in_batches(_not_held(old, held, field))}
    return report


def prune(now=None):
    return run_job("prune", _prune, now=now)


# --- Audit archive --------------------------------------------------------------------------------------


def _archive_audit(job, now=None):
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.RETENTION_AUDIT_HOT_DAYS)
    columns = [f.column for f in ControlAction._meta.concrete_fields]
    column_list = ", ".join(columns)
    moved = 0
    while True:
        with transaction.atomic():
            ids = list(ControlAction.objects.filter(created_at__lt=cutoff).order_by("id")
                       .values_list("id", flat=True)[:settings.RETENTION_BATCH_ROWS])
            if not ids:
                break
            marks = ", ".join(["%s"] * len(ids))
            with connection.cursor() as cursor:
                # Copy, then delete, in one transaction: a row is always in exactly one of the two tables.
                cursor.execute(f"INSERT INTO {ControlActionArchive._meta.db_table} ({column_list}, archived_at) "
                               f"SELECT {column_list}, %s FROM {ControlAction._meta.db_table} WHERE id IN ({marks}) "
                               f"ON CONFLICT (id) DO NOTHING", [now, *ids])
                cursor.execute(f"DELETE FROM {ControlAction._meta.db_table} WHERE id IN ({marks})", ids)
                moved += cursor.rowcount
        _pause()
    return {"moved_rows": moved}


def archive_audit(now=None):
    return run_job("archive_audit", _archive_audit, now=now)


# --- The nightly pass -----------------------------------------------------------------------------------


def nightly(now=None):
    """Partitions ahead, aggregates current, then prune and archive: the whole lifecycle, in that order."""
    def run(job, now=None):
        return {"partitions": maintain_partitions(now), "downsample": downsample(now), "prune": prune(now),
                "archive_audit": archive_audit(now)}
    return run_job("nightly", run, now=now)


JOBS = {"nightly": nightly, "downsample": downsample, "partitions": maintain_partitions, "prune": prune,
        "archive_audit": archive_audit}


# --- The embedded default: an in-process scheduler -----------------------------------------------------

_scheduler_started = False


def due_jobs(now=None):
    """The jobs due now, judged from their last start (so a restart neither skips nor repeats them)."""
    now = now or timezone.now()
    last = dict(RetentionJob.objects.values_list("name", "started_at"))
    due = []
    if not last.get("downsample") or now - last["downsample"] >= timedelta(seconds=settings.RETENTION_DOWNSAMPLE_EVERY_S):
        due.append("downsample")
    local = timezone.localtime(now)
    slot = local.replace(hour=settings.RETENTION_NIGHTLY_HOUR, minute=0, second=0, microsecond=0)
    if slot > local:
        slot -= timedelta(days=1)
    if not last.get("nightly") or last["nightly"] < slot:
        due.append("nightly")
    return due


def start_in_process_scheduler(interval_s=60):
    """Embedded default (no Celery beat): run due jobs from a daemon thread of the web process."""
    global _scheduler_started
    if _scheduler_started:
        return False
    _scheduler_started = True

    def loop():
        from django.db import close_old_connections

        while True:
            time.sleep(interval_s)
            close_old_connections()
            try:
                for name in due_jobs():
                    JOBS[name]()
            except Exception:  # noqa: BLE001 - logged by run_job; the next round retries
                logger.exception("in-process retention jobs failed")
            finally:
                close_old_connections()

    threading.Thread(target=loop, name="retention-scheduler", daemon=True).start()
    return True
