"""Viewers join a lucky bag / grab a red packet by commenting its keyword: watch viewer comments
(streams knows nothing of this)."""

import logging

from django.db import transaction

logger = logging.getLogger("controlroom.compensation")


def comment_posted(sender, instance, created, **kwargs):
    if not created or instance.is_assistant or not instance.viewer_id:
        return
    from .models import Campaign

    # Cheap guard: most comments arrive while no lucky bag or red packet is open in the room.
    if not Campaign.objects.filter(room_id=instance.room_id, kind__in=[Campaign.Kind.LUCKY_BAG, Campaign.Kind.RED_PACKET],
                                   status=Campaign.Status.ISSUING, draw_closed_at__isnull=True).exclude(keyword="").exists():
        return
    room_id, viewer_id, text = instance.room_id, instance.viewer_id, instance.text

    def enter():
        from streams.models import LiveRoom, Viewer

        from . import services
        try:
            services.act_on_comment(room=LiveRoom.objects.get(pk=room_id), viewer=Viewer.objects.get(pk=viewer_id),
                                    text=text)
        except Exception:  # noqa: BLE001 - a failed entry must not lose the comment
            logger.exception("acting on a viewer comment failed")

    transaction.on_commit(enter)


def connect():
    from django.db.models.signals import post_save

    try:
        from streams.models import ChatMessage
    except ImportError:
        return
    post_save.connect(comment_posted, sender=ChatMessage, dispatch_uid="compensation_lucky_bag_comment")
