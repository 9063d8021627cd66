"""Switch records on the embedded default (SQLite, WAL) while other writers hold the lock.

Executed by test_sqlite_switch_records.py in a fresh process (settings are read at start-up) with
SQLITE_BUSY_TIMEOUT_S=1; prints one JSON line of what happened.
"""

import json
import os
import sqlite3
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlroom.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import OperationalError, connection  # noqa: E402

assert settings.EMBEDDED and not settings.USES_POSTGRES
call_command("migrate", verbosity=0)

from controlroom.db import retry_write  # noqa: E402
from streams import media_commands, services  # noqa: E402
from streams.mediaworker import bridge  # noqa: E402
from streams.models import ControlAction, LiveRoom  # noqa: E402

result = {}
with connection.cursor() as cursor:
    cursor.execute("PRAGMA journal_mode")
    result["journal_mode"] = cursor.fetchone()[0]
room = LiveRoom.objects.create(name="本地", slug="local", merchant="m", status=LiveRoom.Status.LIVE)
path = settings.DATABASES["default"]["NAME"]


def hold_write_lock(seconds, held):
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    held.set()
    time.sleep(seconds)
    other.execute("COMMIT")
    other.close()


def while_locked(seconds, fn):
    held = threading.Event()
    holder = threading.Thread(target=hold_write_lock, args=(seconds, held))
    holder.start()
    held.wait(5)
    try:
        return fn()
    finally:
        holder.join()


ACK = {"from": "primary", "to": "backup", "latency_ms": 42.0, "first_frame_at": time.time()}

# 1. Without a retry the lock is real: the write is refused.
try:
    while_locked(2.5, lambda: bridge.record_auto_switch("local", ACK, "input_loss"))
    result["plain"] = "recorded"
except OperationalError as exc:
    result["plain"] = str(exc)
room.refresh_from_db()
result["after_plain"] = [room.program_source, ControlAction.objects.filter(action="switch_source").count()]

# 2. The media worker's path retries: the audit row and program_source follow what viewers see.
while_locked(2.5, lambda: retry_write(bridge.record_auto_switch, "local", ACK, "input_loss", attempts=8))
room.refresh_from_db()
result["after_retry"] = [room.program_source, ControlAction.objects.filter(action="switch_source").count()]

# 3. A manual cut whose record cannot land even after the retries: the operator is told the truth.
cut = {"from": "backup", "to": "slate", "latency_ms": 30.0, "first_frame_at": time.time()}
try:
    while_locked(12.0, lambda: media_commands._apply_source(room, cut, action="switch_source", actor=None,
                                                             actor_label="tester", reason="manual"))
    result["manual"] = "recorded"
except media_commands.MediaCommandError as exc:
    result["manual"] = str(exc)

# 4. Concurrent writers (alerts, audit rows) beside a retried switch: every write lands.
errors = []


def writer(n):
    try:
        for i in range(15):
            retry_write(services.record_action, actor=None, actor_label=f"w{n}", action="probe", room=room,
                        target=str(i))
            retry_write(services.raise_alert, room=room, kind="other", message=f"w{n}")
    except Exception as exc:  # noqa: BLE001 - reported
        errors.append(repr(exc))
    finally:
        connection.close()


threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
for t in threads:
    t.start()
retry_write(bridge.record_auto_switch, "local", {**ACK, "from": "backup", "to": "primary"}, "revert", attempts=8)
for t in threads:
    t.join(120)
room.refresh_from_db()
result["concurrent"] = {"errors": errors, "probes": ControlAction.objects.filter(action="probe").count(),
                        "program_source": room.program_source,
                        "alert_count": room.alerts.get(kind="other").count}
print(json.dumps(result, ensure_ascii=False))
