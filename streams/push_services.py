"""Writes for RTMP push destinations: each change in one transaction with its audit row.

The stream key is a secret: it is never written to the audit detail or the log (the detail says only
whether it changed). The media worker picks changes up on its next settings refresh (a few seconds).
"""

from urllib.parse import urlsplit

from django.db import transaction
from django.utils import timezone

from controlroom.roles import require_capability

from .models import PushDestination
from .services import record_action


def _detail(dest, **extra):
    return {"destination": dest.pk, "platform": dest.platform, "host": urlsplit(dest.url).netloc,
            "enabled": dest.enabled, **extra}


def do_add_push_destination(*, user, room, platform, url, stream_key, enabled=True):
    require_capability(user, "edit_push_destinations", what=f"add push destination {room.slug}")
    with transaction.atomic():
        dest = PushDestination(room=room, platform=platform, url=url.strip(), stream_key=stream_key.strip(),
                               enabled=enabled)
        dest.full_clean()
        dest.save()
        record_action(actor=user, action="push_destination_add", room=room, target=dest.get_platform_display(),
                      detail=_detail(dest))
    return dest


def do_update_push_destination(*, user, destination_id, platform, url, stream_key="", enabled):
    """A blank `stream_key` keeps the saved one (the form never shows it back)."""
    with transaction.atomic():
        dest = PushDestination.objects.select_for_update().select_related("room").get(pk=destination_id)
        require_capability(user, "edit_push_destinations", what=f"edit push destination {dest.room.slug}")
        key_changed = bool(stream_key.strip()) and stream_key.strip() != dest.stream_key
        dest.platform, dest.url, dest.enabled = platform, url.strip(), enabled
        if key_changed:
            dest.stream_key = stream_key.strip()
        dest.updated_at = timezone.now()
        dest.full_clean()
        dest.save()
        record_action(actor=user, action="push_destination_update", room=dest.room,
                      target=dest.get_platform_display(), detail=_detail(dest, key_changed=key_changed))
    return dest


def do_delete_push_destination(*, user, destination_id):
    with transaction.atomic():
        dest = PushDestination.objects.select_for_update().select_related("room").get(pk=destination_id)
        require_capability(user, "edit_push_destinations", what=f"delete push destination {dest.room.slug}")
        detail = _detail(dest)
        dest.delete()
        record_action(actor=user, action="push_destination_delete", room=dest.room,
                      target=dest.get_platform_display(), detail=detail)
