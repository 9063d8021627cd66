"""Program thumbnails for big walls.

With more rooms than live previews can afford, the wall shows a small JPEG of each room's program
output, refreshed every few seconds. The media worker makes it from the picture it already decoded
(no extra WebRTC session) and keeps only the newest one per room: in Redis (with a TTL, so a room
whose worker stopped shows "no picture" rather than an old one) or, on the embedded default, in memory.
"""

import time

from django.conf import settings

from .fanout import sync_redis

KEY_PREFIX = "controlroom:snapshot:"
EVERY_S = 3  # how often the media worker refreshes a room's thumbnail
TTL_S = 10
WIDTH, HEIGHT = 320, 180

_local = {}  # embedded default: slug -> (jpeg, monotonic time)


def store(slug, jpeg):
    if settings.REDIS_URL:
        sync_redis().set(KEY_PREFIX + slug, jpeg, ex=TTL_S)
    else:
        _local[slug] = (jpeg, time.monotonic())


def load(slug):
    """The room's newest thumbnail (JPEG bytes), or None if there is no recent one."""
    if settings.REDIS_URL:
        return sync_redis().get(KEY_PREFIX + slug)
    jpeg, at = _local.get(slug, (None, 0.0))
    return jpeg if jpeg is not None and time.monotonic() - at < TTL_S else None
