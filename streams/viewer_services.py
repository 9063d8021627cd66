"""Viewer-facing writes: pinned announcements, host cues, chat replies, personal notices.

Each one runs in one transaction, audits through record_action, and pushes after commit: rendered
once, then PUBLISHed to every process's viewer sockets (streams.fanout) or group-sent to the host's
cue screen (a handful of sockets, the channel layer is fine there).
"""

import hashlib
import time

from django.core.exceptions import ValidationError
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.translation import gettext as _

from controlroom.middleware import CONTROL_CHARACTERS
from controlroom.roles import require_capability

from . import fanout
from .models import Announcement, ChatMessage, HostCue, LiveRoom, Viewer
from .services import record_action
from .viewer_notices import Notice

ASSISTANT_NAME = "直播间助理"


def cue_group(slug):
    return f"cue-{slug}"


def announcement_data(announcement):
    if announcement is None:
        return {"pinned": None}
    return {"pinned": {"id": announcement.pk, "text": announcement.text, "kind": announcement.kind,
                       "eta_minutes": announcement.eta_minutes,
                       "pinned_at": announcement.pinned_at.isoformat()}}


def current_announcement(room):
    return Announcement.objects.filter(room=room, unpinned_at__isnull=True).first()


def render_banner(room, announcement):
    return render_to_string("streams/live.html#banner", {"room": room, "announcement": announcement})


def broadcast_announcement(room):
    """Push the room's current banner (state, not delta: the latest commit wins everywhere)."""
    announcement = current_announcement(room)
    fanout.publish({"room": room.slug, "kind": "announcement", "html": render_banner(room, announcement),
                    "data": announcement_data(announcement)})


def pin_announcement(*, room, actor, text="", template=None, eta_minutes=None):
    """Pin (or replace) the room's banner: free text, or a template with {eta} filled in."""
    require_capability(actor, "pin_announcement")
    text = (text or "").strip()
    if not text and template is not None:
        text = template.render(eta_minutes)
    if not text:
        raise ValidationError(_("公告内容不能为空"))
    if len(text) > 300:
        raise ValidationError(_("公告内容过长(最多300字)"))
    now = timezone.now()
    with transaction.atomic():
        room = LiveRoom.objects.select_for_update().get(pk=room.pk)
        previous = current_announcement(room)
        if previous is not None:
            previous.unpinned_at, previous.unpinned_by = now, actor
            previous.save(update_fields=["unpinned_at", "unpinned_by"])
        announcement = Announcement.objects.create(
            room=room, text=text, kind=template.kind if template else "info", template=template,
            eta_minutes=eta_minutes, pinned_at=now, pinned_by=actor)
        record_action(actor=actor, action="pin_announcement", room=room, target=str(announcement.pk),
                      reason=text, detail={"text": text, "kind": announcement.kind, "eta_minutes": eta_minutes,
                                           "template": template.pk if template else None,
                                           "replaced": previous.pk if previous else None})
        transaction.on_commit(lambda: broadcast_announcement(room))
    return announcement


def unpin_announcement(*, room, actor):
    """Take the banner down; returns the unpinned announcement or None when nothing was pinned."""
    require_capability(actor, "unpin_announcement")
    with transaction.atomic():
        room = LiveRoom.objects.select_for_update().get(pk=room.pk)
        announcement = current_announcement(room)
        if announcement is None:
            return None
        announcement.unpinned_at, announcement.unpinned_by = timezone.now(), actor
        announcement.save(update_fields=["unpinned_at", "unpinned_by"])
        record_action(actor=actor, action="unpin_announcement", room=room, target=str(announcement.pk),
                      reason=announcement.text, detail={"text": announcement.text})
        transaction.on_commit(lambda: broadcast_announcement(room))
    return announcement


def render_cue(cue):
    return render_to_string("streams/cue.html#cue_item", {"cue": cue, "push": True})


def send_host_cue(*, room, actor, text):
    require_capability(actor, "send_host_cue")
    text = (text or "").strip()
    if not text:
        raise ValidationError(_("提词内容不能为空"))
    with transaction.atomic():
        cue = HostCue.objects.create(room=room, text=text[:200], sent_by=actor)
        record_action(actor=actor, action="send_host_cue", room=room, target=str(cue.pk), reason=cue.text,
                      detail={"text": cue.text})
        transaction.on_commit(lambda: _push_cue(room.slug, cue))
    return cue


def _push_cue(slug, cue):
    from .events import send_to_group

    send_to_group(cue_group(slug), {"type": "cue.html", "html": render_cue(cue)})


def ack_host_cue(*, room, cue_id):
    """The host tapped the cue: record it once (a second tap changes nothing)."""
    with transaction.atomic():
        cue = HostCue.objects.select_for_update().filter(room=room, pk=cue_id).first()
        if cue is None or cue.acknowledged_at is not None:
            return cue
        cue.acknowledged_at = timezone.now()
        cue.save(update_fields=["acknowledged_at"])
        record_action(actor=None, actor_label="host", action="ack_host_cue", room=room, target=str(cue.pk),
                      reason=cue.text, latency_ms=(cue.acknowledged_at - cue.sent_at).total_seconds() * 1000)
        transaction.on_commit(lambda: _push_cue(room.slug, cue))
    return cue


def render_chat(message):
    return render_to_string("streams/live.html#chat_message", {"message": message})


def _publish_chat(room, message):
    fanout.publish({"room": room.slug, "kind": "chat", "html": render_chat(message),
                    "data": {"author": message.author_name, "text": message.text,
                             "assistant": message.is_assistant, "at": message.created_at.isoformat()}})


def post_chat_reply(*, room, actor, text):
    """Floor control posts a calming reply / FAQ snippet as the room's assistant."""
    require_capability(actor, "post_chat_reply")
    if not isinstance(text, str) or CONTROL_CHARACTERS.search(text):
        raise ValidationError(_("回复内容必须是文字,且不能包含控制字符"))
    text = text.strip()
    if not text:
        raise ValidationError(_("回复内容不能为空"))
    with transaction.atomic():
        message = ChatMessage.objects.create(room=room, author_name=ASSISTANT_NAME, is_assistant=True,
                                             posted_by=actor, text=text[:300])
        record_action(actor=actor, action="post_chat_reply", room=room, target=str(message.pk), reason=text)
        transaction.on_commit(lambda: _publish_chat(room, message))
    return message


def _chat_tag(viewer_key):
    """Four characters that tell a viewer's comments apart, derived from the key: the device cookie is the
    anonymous viewer's credential, so no part of it is shown to other viewers."""
    return hashlib.blake2s((viewer_key or "").encode(), digest_size=2).hexdigest() if viewer_key else ""


def post_viewer_chat(*, room, viewer_key, text, nickname=""):
    """A viewer's comment (rate-limited by the socket); not a control action, so not audited."""
    from .presence import viewer_ids_for_keys

    # Control characters (NUL breaks PostgreSQL text) are dropped: harmless to strip from a comment.
    text = CONTROL_CHARACTERS.sub("", text if isinstance(text, str) else "").strip()[:300]
    nickname = CONTROL_CHARACTERS.sub("", nickname if isinstance(nickname, str) else "").strip()[:50]
    if not text:
        return None
    with transaction.atomic():
        viewer_id = viewer_ids_for_keys({viewer_key}).get(viewer_key) if viewer_key else None
        message = ChatMessage.objects.create(room=room, viewer_id=viewer_id, text=text,
                                             author_name=nickname or _("观众") + _chat_tag(viewer_key))
        transaction.on_commit(lambda: _publish_chat(room, message))
    return message


def viewer_key(viewer):
    return f"u:{viewer.user_id}" if viewer.user_id else f"d:{viewer.device_id}"


def refresh_viewer_panels(*, room):
    """Ask every viewer page of the room to reload its panels (an offer opened or closed), on commit.

    One tiny pub/sub message instead of every viewer polling; pages spread their reloads over ~2 s.
    """
    html = f'<div id="viewer-panels-nudge" hx-swap-oob="true" hidden data-at="{time.time():.3f}"></div>'
    transaction.on_commit(lambda: fanout.publish({"room": room.slug, "kind": "panels", "html": html}))


def _viewer_keys(viewer_ids):
    return [viewer_key(v) for v in Viewer.objects.filter(pk__in=list(viewer_ids)).only("user_id", "device_id")]


def _publish_to(room_slug, keys, message):
    # Bounded batches so one huge campaign does not become one giant pub/sub message.
    for i in range(0, len(keys), 5000):
        fanout.publish({"room": room_slug, **message, "viewer_keys": keys[i:i + 5000]})


def deliver_to_viewers(*, room, viewer_ids, html, key):
    """Put a fragment on these viewers' open pages of the room right now (call after commit): it lands in the
    page's inbox and from there where its data-into says, once per key (e.g. another app's offer card, so
    it shows at once instead of after the panels' spread reload). Returns how many viewers were addressed."""
    keys = _viewer_keys(viewer_ids)
    inbox = f'<div id="viewer-inbox" hx-swap-oob="true" hidden>{html}</div>'
    _publish_to(room.slug, keys, {"kind": "inbox", "html": inbox, "data": {"key": key}})
    return len(keys)


def notify_viewers(*, room, viewer_ids, text, key="", link="", link_label=""):
    """Push a personal notice to these viewers' open sockets in the room; returns how many were addressed.

    `key` names the news ("campaign-7"): a socket gets a key once, pages show it once."""
    keys = _viewer_keys(viewer_ids)
    if keys:
        notice = Notice(text, key=key, link=link, link_label=link_label)
        html = render_to_string("streams/live.html#notice", {"text": notice})
        message = {"kind": "notice", "html": html, "data": {"text": text, "key": key, "link": link}}
        transaction.on_commit(lambda: _publish_to(room.slug, keys, message))
    return len(keys)


__all__ = ["pin_announcement", "unpin_announcement", "send_host_cue", "ack_host_cue", "notify_viewers",
           "deliver_to_viewers", "refresh_viewer_panels",
           "post_chat_reply", "post_viewer_chat", "current_announcement", "broadcast_announcement", "cue_group"]
