"""/healthz's media check on the embedded default: idle until the engine starts; then its loop must answer.

Executed by test_embedded_health.py in a fresh process (no DATABASE_URL / REDIS_URL); prints one JSON line.
"""

import asyncio
import json
import os
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
from django.test import Client  # noqa: E402

assert settings.MEDIA_WORKER_EMBEDDED
call_command("migrate", verbosity=0)

from streams.mediaworker import client as media_client  # noqa: E402

result = {}
http = Client()


def media_check():
    response = http.get("/healthz")
    return response.status_code, response.json()["checks"]["media_worker"]


result["idle"] = media_check()

loop = asyncio.new_event_loop()
threading.Thread(target=loop.run_forever, daemon=True).start()


async def start_engine():
    return media_client.local_engine()


asyncio.run_coroutine_threadsafe(start_engine(), loop).result(10)
result["running"] = media_check()

# The engine's loop is stuck (e.g. a blocking call on it) for longer than the check waits: not ok.
loop.call_soon_threadsafe(time.sleep, 4.0)
time.sleep(0.2)
result["stuck"] = media_check()
time.sleep(4.5)
result["recovered"] = media_check()
print(json.dumps(result))
