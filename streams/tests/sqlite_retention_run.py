"""The data lifecycle on the embedded default (SQLite): no partitions, bounded batched deletes.

Executed by test_sqlite_retention.py in a fresh process (settings are read at start-up) with
RETENTION_BATCH_ROWS=100; prints one JSON line of what happened.
"""

import json
import os
import sys
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlroom.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.utils import timezone  # noqa: E402

assert settings.EMBEDDED and not settings.USES_POSTGRES
call_command("migrate", verbosity=0)

from incidents.models import Incident, IncidentType  # noqa: E402
from streams import retention  # noqa: E402
from streams.models import ChatMessage, HealthMinute, HealthSample, LiveRoom, Viewer, ViewerSession  # noqa: E402

now = timezone.now()
old = (now - timedelta(days=200)).replace(second=0, microsecond=0)
kept_room = LiveRoom.objects.create(name="有事故", slug="held", merchant="m")
other_room = LiveRoom.objects.create(name="无事故", slug="free", merchant="m")
viewer = Viewer.objects.create(device_id="v1")
for room in (kept_room, other_room):
    HealthSample.objects.bulk_create([HealthSample(room=room, line_role="primary", at=old + timedelta(seconds=10 * i),
                                                   fps=25, bitrate_kbps=1000 + i % 5) for i in range(360)])
    ViewerSession.objects.bulk_create([ViewerSession(room=room, viewer=viewer, joined_at=old + timedelta(minutes=i),
                                                     last_seen_at=old + timedelta(minutes=i + 5)) for i in range(250)])
    ChatMessage.objects.bulk_create([ChatMessage(room=room, author_name="a", text="t",
                                                 created_at=old + timedelta(seconds=i)) for i in range(250)])
Incident.objects.create(room=kept_room, incident_type=IncidentType.objects.first(), title="t",
                        status=Incident.Status.RESOLVED, detected_at=old, resolved_at=old + timedelta(hours=6))
first = retention.nightly(now)
second = retention.nightly(now)


def counts(room):
    return [HealthSample.objects.filter(room=room).count(), ViewerSession.objects.filter(room=room).count(),
            ChatMessage.objects.filter(room=room).count(), HealthMinute.objects.filter(room=room).count()]


print(json.dumps({"first": first["prune"], "second": second["prune"], "held": counts(kept_room),
                  "free": counts(other_room), "partitions": first["partitions"]}))
