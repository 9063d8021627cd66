"""Paging on the embedded default (SQLite, no Redis, no celery beat): the delivery runs on the in-process
pool and the in-process ticker escalates an unanswered page. Run by test_paging.py in a fresh process
(settings are read at start-up); argv[1] is the receiver's base URL; prints a JSON result."""

import json
import os
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlroom.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth.models import Group, User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.utils import timezone  # noqa: E402

assert settings.EMBEDDED and not settings.USES_POSTGRES
call_command("migrate", verbosity=0)

from incidents import paging, services  # noqa: E402
from incidents.models import Incident, PageDelivery  # noqa: E402
from streams.models import LiveRoom  # noqa: E402

base = sys.argv[1]
manager = User.objects.create_user("mia_manager")
manager.groups.add(Group.objects.get(name="manager"))
paging.save_robot(actor=manager, name="值班群", platform="feishu", webhook_url=f"{base}/feishu/h",
                  secret="feishu-secret", roles=["ops", "tech_support", "manager"])
room = LiveRoom.objects.create(name="本地直播间", slug="local", merchant="m", status=LiveRoom.Status.LIVE)
incident = services.open_incident(room=room, incident_type="stream-interruption", actor=None, source="line_down")


def wait(predicate, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


first = wait(lambda: PageDelivery.objects.filter(incident=incident, round=1, status="sent").exists())
# Nobody answered for longer than the window: move the page's time back instead of waiting minutes.
Incident.objects.filter(pk=incident.pk).update(
    last_paged_at=timezone.now() - timedelta(minutes=settings.PAGING_ACK_MINUTES, seconds=1))
second = wait(lambda: PageDelivery.objects.filter(incident=incident, round=2, status="sent").exists())
print(json.dumps({"first": first, "second": second, "rounds": Incident.objects.get(pk=incident.pk).page_round}))
