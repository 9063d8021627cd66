"""Fixtures shared by the media test modules (imported by their conftest-free modules)."""

import asyncio

import pytest
from asgiref.sync import sync_to_async
from django.db import connections

from streams.mediaworker import client
from streams.mediaworker.bridge import close_db


@pytest.fixture
def media(settings):
    """The embedded media worker at a small, cheap output size."""
    settings.MEDIA_WORKER_EMBEDDED = True
    settings.MEDIA_OUTPUT_WIDTH, settings.MEDIA_OUTPUT_HEIGHT, settings.MEDIA_OUTPUT_FPS = 160, 120, 30
    settings.MEDIA_OUTPUT_BITRATE = 300_000
    return settings


async def stop_media():
    await client.shutdown_local_engine()
    # late peer-connection callbacks may still queue audit writes: let them land before the DB is flushed
    await asyncio.sleep(0.3)
    await close_db()
    await sync_to_async(connections.close_all)()
