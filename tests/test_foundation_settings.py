"""Settings are validated at start: a bad value is a clear ImproperlyConfigured."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def boot(**env):
    """Import the settings in a fresh interpreter with `env`; return (exit code, output)."""
    clean = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "DEBUG", "SECRET_KEY")}
    clean.update(env)
    proc = subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); print('BOOTED')"],
        cwd=ROOT, env={**clean, "DJANGO_SETTINGS_MODULE": "controlroom.settings"},
        capture_output=True, text=True, timeout=60,
    )
    return proc.returncode, proc.stdout + proc.stderr


@pytest.mark.parametrize(
    "env, message",
    [
        ({"DATABASE_URL": "mysql://root@127.0.0.1/db"}, "DATABASE_URL scheme 'mysql' is not supported"),
        ({"DATABASE_URL": "postgres://postgres@127.0.0.1:5432/"}, "DATABASE_URL must name a database"),
        ({"REDIS_URL": "http://127.0.0.1:6379"}, "REDIS_URL must start with redis://"),
        ({"DEBUG": "maybe"}, "DEBUG='maybe' is not a boolean"),
        ({"DEBUG": "0"}, "SECRET_KEY must be set when DEBUG=0"),
        ({"DEBUG": "0", "SECRET_KEY": "short"}, "SECRET_KEY must be at least 50 characters"),
        ({"MEDIA_WORKER_LEASE_SECONDS": "ten"}, "MEDIA_WORKER_LEASE_SECONDS='ten' is not an integer"),
        ({"MEDIA_WORKER_LEASE_SECONDS": "1"}, "MEDIA_WORKER_LEASE_SECONDS=1 is out of range"),
        ({"GC_THRESHOLDS": "7000,10"}, "GC_THRESHOLDS: expected three integers"),
        ({"GC_THRESHOLDS": "lots"}, "GC_THRESHOLDS: not three comma-separated integers"),
        ({"RETENTION_HEALTH_RAW_DAYS": "1"}, "RETENTION_HEALTH_RAW_DAYS=1 is out of range"),
        ({"RETENTION_HEALTH_RAW_DAYS": "30", "RETENTION_HEALTH_MINUTE_DAYS": "20"},
         "RETENTION_HEALTH_MINUTE_DAYS=20 must be at least RETENTION_HEALTH_RAW_DAYS=30"),
        ({"RETENTION_PRESENCE_DAYS": "forever"}, "RETENTION_PRESENCE_DAYS='forever' is not an integer"),
    ],
)
def test_bad_setting_is_a_clear_improperly_configured(env, message):
    code, output = boot(**env)
    assert code != 0
    assert "ImproperlyConfigured" in output
    assert message in output


def test_embedded_default_boots_on_sqlite_and_in_memory_layer():
    code, output = boot()
    assert code == 0, output
    probe = (
        "import django; django.setup(); from django.conf import settings as s;"
        "print(s.DATABASES['default']['ENGINE'], s.CHANNEL_LAYERS['default']['BACKEND'], s.EMBEDDED)"
    )
    clean = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    proc = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=60)
    assert proc.stdout.split() == ["django.db.backends.sqlite3", "channels.layers.InMemoryChannelLayer", "True"]


def test_production_settings_pass_check_deploy_without_warnings():
    env = {k: v for k, v in os.environ.items()}
    env.update(DEBUG="0", SECRET_KEY="k" * 30 + "-production-secret-key-for-the-check", ALLOWED_HOSTS="ops.example.com")
    proc = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "no issues" in proc.stdout + proc.stderr


def test_redis_channel_layer_has_no_read_timeout_and_a_large_pool(settings):
    if settings.EMBEDDED:
        pytest.skip("runs with REDIS_URL set")
    host = settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"][0]
    assert host["socket_timeout"] is None
    assert host["max_connections"] >= 1000


def test_beat_schedule_names_registered_celery_tasks(settings):
    from controlroom.celery import app

    app.loader.import_default_modules()
    for name, entry in settings.CELERY_BEAT_SCHEDULE.items():
        assert entry["task"] in app.tasks, name


async def test_pubsub_names_carry_the_redis_database_so_two_deployments_on_one_server_stay_apart(settings):
    """Redis pub/sub ignores SELECT: a demo on db 0 must not see CI's health samples on db 9."""
    if settings.EMBEDDED:
        pytest.skip("runs with REDIS_URL set")
    import asyncio

    from streams import events

    probe = "import django; django.setup(); from django.conf import settings as s; print(s.PUBSUB_PREFIX)"
    env = {**os.environ, "REDIS_URL": "redis://127.0.0.1:6379/9", "CHANNEL_LAYER_PREFIX": "cr"}
    proc = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "cr:9"

    # The wall hub's subscription hears its own database's samples only.
    ready = asyncio.Event()
    heard = []

    async def listen():
        async for message in events.health_messages(ready):
            heard.append(message["room"])

    listener = asyncio.ensure_future(listen())
    await asyncio.wait_for(ready.wait(), 5)
    ours = settings.PUBSUB_PREFIX
    settings.PUBSUB_PREFIX = ours + "-other-db"
    await events.publish_health("other-deployment", {})
    settings.PUBSUB_PREFIX = ours
    await events.publish_health("ours", {})
    for _ in range(100):
        if "ours" in heard:
            break
        await asyncio.sleep(0.02)
    listener.cancel()
    await asyncio.gather(listener, return_exceptions=True)
    assert heard == ["ours"]


@pytest.mark.django_db(transaction=True)
async def test_database_connections_are_pooled_not_reopened_for_every_call(settings):
    """A wall click is one database_sync_to_async call: it must not pay a PostgreSQL connect (≈ 8 ms)."""
    if not settings.USES_POSTGRES:
        pytest.skip("runs with DATABASE_URL=postgres://")
    from channels.db import database_sync_to_async
    from django.db import connection

    def backend_pid():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            return cursor.fetchone()[0]

    pids = [await database_sync_to_async(backend_pid, thread_sensitive=False)() for _ in range(10)]
    # Each call closes its connection when it ends; closing hands it back to the pool. Without the pool
    # that is ten connects, ten server processes, ten pids.
    assert len(set(pids)) <= 3, pids


def test_the_web_process_runs_with_the_socket_friendly_collector_and_frozen_startup_objects():
    probe = "import gc, controlroom.asgi; print(*gc.get_threshold(), gc.get_freeze_count())"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "controlroom.settings"}
    for thresholds, expected in (("7000,10,1000", [7000, 10, 1000]), ("python", [700, 10, 10])):
        proc = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env={**env, "GC_THRESHOLDS": thresholds},
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        *got, frozen = map(int, proc.stdout.split()[-4:])
        assert got == expected
        assert frozen > 50_000  # Django, the URLconf and the consumers: never walked by a collection again


def test_a_slow_collection_is_logged_as_a_gc_pause(caplog, settings):
    import gc

    from controlroom.gc_tuning import unwatch_pauses, watch_pauses

    try:
        watch_pauses(0)  # every collection counts as slow
        with caplog.at_level("WARNING", logger="controlroom.gc_tuning"):
            gc.collect(1)
        assert any("gc pause: generation 1 collection took" in r.getMessage() for r in caplog.records)
        caplog.clear()
        watch_pauses(settings.GC_PAUSE_WARNING_MS)
        with caplog.at_level("WARNING", logger="controlroom.gc_tuning"):
            gc.collect(0)  # a young collection of a test process takes well under GC_PAUSE_WARNING_MS
        assert not [r for r in caplog.records if "gc pause" in r.getMessage()]
    finally:
        unwatch_pauses()
