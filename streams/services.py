"""Writes for the streams app. Each action: one transaction, an audit row, events on commit.

Signals to other apps (incidents) are sent after the commit too: their reactions never run inside the
sender's transaction, so a slow or failing receiver cannot hold or roll back an action and its audit row.
"""

import logging

from django.db import IntegrityError, transaction
from django.utils import timezone

from .events import WALL_GROUP, room_group, send_on_commit
from .models import Alert, ControlAction, LiveRoom, LiveSession
from .signals import (
    alert_acknowledged,
    alert_raised,
    alert_repeated,
    control_action_recorded,
    room_status_changed,
)

logger = logging.getLogger(__name__)


def send_after_commit(signal, **kwargs):
    """Send `signal` once the current transaction commits; a receiver's error is logged, not raised."""

    def send():
        for receiver, result in signal.send_robust(**kwargs):
            if isinstance(result, Exception):
                logger.error("receiver %r of %s failed", receiver, kwargs.get("sender"), exc_info=result)

    transaction.on_commit(send)


def record_action(*, actor, action, room=None, target="", reason="", outcome=ControlAction.Outcome.OK,
                  latency_ms=None, detail=None, actor_label=""):
    """Append a ControlAction and broadcast it to the room's group (and the wall) on commit.

    `actor` is a user or None (then `actor_label` says who: "auto", "mediaworker", ...).
    """
    # No savepoint inside the caller's transaction: if the audit row fails, the whole action rolls back
    # (an action without its audit row must not commit), and a click saves two round trips.
    with transaction.atomic(savepoint=False):
        row = ControlAction.objects.create(
            actor=actor if getattr(actor, "is_authenticated", False) else None,
            actor_label=actor_label or ("" if getattr(actor, "is_authenticated", False) else "system"),
            room=room,
            action=action,
            target=target,
            reason=reason[:200],
            outcome=outcome,
            latency_ms=latency_ms,
            detail=detail or {},
        )
        send_after_commit(control_action_recorded, sender=ControlAction, action=row)
        event = {"type": "control.action", "action_id": row.pk, "room": room.slug if room else None}
        if room is not None:
            send_on_commit(room_group(room.slug), event)
        send_on_commit(WALL_GROUP, event)
    return row


SEVERITY_RANK = {Alert.Severity.INFO: 0, Alert.Severity.WARNING: 1, Alert.Severity.CRITICAL: 2}


def raise_alert(*, room, kind, message, severity=Alert.Severity.WARNING, line_role="", detail=None, times=1):
    """Open an alert, or count a repeat into the room's open alert of that kind (one per room and kind).

    A repeat updates the row in place (count, last_seen_at, latest message/detail, the worse severity) and
    tells the wall and the incident timeline to update their entry; only a new alert beeps.
    Returns the alert; `alert.repeated` says which case it was. `times`: occurrences this call reports.
    """
    now = timezone.now()
    detail = detail or {}
    with transaction.atomic():
        alert = _count_repeat(room, kind, message, severity, line_role, detail, now, times)
        if alert is None:
            try:
                with transaction.atomic():  # a savepoint: a concurrent raise may have opened it first
                    alert = Alert.objects.create(room=room, kind=kind, message=message[:300], severity=severity,
                                                 line_role=line_role, detail=detail, raised_at=now, last_seen_at=now,
                                                 count=times)
                alert.repeated = False
            except IntegrityError:
                alert = _count_repeat(room, kind, message, severity, line_role, detail, now, times)
        if alert.repeated:
            send_after_commit(alert_repeated, sender=Alert, alert=alert)
            send_on_commit(WALL_GROUP, {"type": "alert.updated", "alert_id": alert.pk, "room": room.slug})
        else:
            send_after_commit(alert_raised, sender=Alert, alert=alert)
            send_on_commit(WALL_GROUP, {"type": "alert.raised", "alert_id": alert.pk, "room": room.slug})
    return alert


def _count_repeat(room, kind, message, severity, line_role, detail, now, times):
    alert = (Alert.objects.select_for_update().select_related("room")
             .filter(room=room, kind=kind, acknowledged_at__isnull=True).first())
    if alert is None:
        return None
    alert.count += times
    alert.last_seen_at = now
    alert.message = message[:300]
    alert.line_role = line_role or alert.line_role
    alert.detail = detail
    if SEVERITY_RANK.get(severity, 1) > SEVERITY_RANK.get(alert.severity, 1):
        alert.severity = severity
    alert.save(update_fields=["count", "last_seen_at", "message", "line_role", "detail", "severity"])
    alert.repeated = True
    return alert


def acknowledge_alert(*, alert_id, user, as_=Alert.AckAs.SEEN):
    with transaction.atomic():
        alert = Alert.objects.select_for_update().select_related("room").get(pk=alert_id)
        if alert.acknowledged_at is None:
            alert.acknowledged_at = timezone.now()
            alert.acknowledged_by = user
            alert.acknowledged_as = as_
            alert.save(update_fields=["acknowledged_at", "acknowledged_by", "acknowledged_as"])
            record_action(actor=user, action="acknowledge_alert", room=alert.room, target=str(alert.pk),
                          reason=as_, detail={"kind": alert.kind})
            send_after_commit(alert_acknowledged, sender=Alert, alert=alert, user=user)
            send_on_commit(WALL_GROUP, {"type": "alert.acknowledged", "alert_id": alert.pk, "room": alert.room.slug})
    return alert


def acknowledge_room_alerts(*, room, user):
    """Acknowledge every open alert of a room at once: one action, one audit row. Returns the alerts."""
    with transaction.atomic():
        alerts = list(Alert.objects.select_for_update().select_related("room")
                      .filter(room=room, acknowledged_at__isnull=True).order_by("raised_at", "id"))
        if not alerts:
            return []
        now = timezone.now()
        Alert.objects.filter(pk__in=[a.pk for a in alerts]).update(
            acknowledged_at=now, acknowledged_by=user, acknowledged_as=Alert.AckAs.SEEN)
        record_action(actor=user, action="acknowledge_room_alerts", room=room, target=str(len(alerts)),
                      reason=Alert.AckAs.SEEN, detail={"alerts": [a.pk for a in alerts],
                                                       "kinds": sorted({a.kind for a in alerts})})
        for alert in alerts:
            alert.acknowledged_at, alert.acknowledged_by, alert.acknowledged_as = now, user, Alert.AckAs.SEEN
            send_after_commit(alert_acknowledged, sender=Alert, alert=alert, user=user)
            send_on_commit(WALL_GROUP, {"type": "alert.acknowledged", "alert_id": alert.pk, "room": room.slug})
    return alerts


def snooze_room_alerts(*, room, user, duration):
    """Silence a room's alerts for a while (`duration`: a key of AlertSnooze.DURATIONS). Its alerts are still
    raised, counted and listed; they neither beep nor flash until the snooze ends or is lifted."""
    from datetime import timedelta

    from .models import AlertSnooze

    minutes, _label = AlertSnooze.DURATIONS[duration]
    now = timezone.now()
    with transaction.atomic():
        session = None
        if minutes is None:
            session = LiveSession.objects.filter(room=room, ended_at__isnull=True).order_by("-started_at").first()
            if session is None:
                raise ValueError("the room is not on air: nothing to snooze until the end of")
        until = None if minutes is None else now + timedelta(minutes=minutes)
        snooze, _created = AlertSnooze.objects.update_or_create(
            room=room, defaults={"until": until, "live_session": session, "snoozed_by": user, "created_at": now})
        record_action(actor=user, action="snooze_room_alerts", room=room, target=duration,
                      detail={"until": until.isoformat() if until else None,
                              "live_session": session.pk if session else None})
        send_on_commit(WALL_GROUP, {"type": "alerts.snoozed", "room": room.slug})
    return snooze


def unsnooze_room_alerts(*, room, user):
    """Lift a room's snooze: its next alert beeps again. Returns False if it was not snoozed."""
    from .models import AlertSnooze

    with transaction.atomic():
        deleted, _ = AlertSnooze.objects.filter(room=room).delete()
        if not deleted:
            return False
        record_action(actor=user, action="unsnooze_room_alerts", room=room)
        send_on_commit(WALL_GROUP, {"type": "alerts.snoozed", "room": room.slug})
    return True


def set_room_status(*, room, status, actor, reason=""):
    """Go live / end a room; keeps LiveSession intervals (live hours) in step."""
    now = timezone.now()
    with transaction.atomic():
        room = LiveRoom.objects.select_for_update().get(pk=room.pk)
        old = room.status
        if old == status:
            return room
        room.status = status
        room.save(update_fields=["status"])
        if status == LiveRoom.Status.LIVE:
            LiveSession.objects.create(room=room, started_at=now)
        elif old == LiveRoom.Status.LIVE:
            LiveSession.objects.filter(room=room, ended_at__isnull=True).update(ended_at=now)
        record_action(actor=actor, action="set_room_status", room=room, target=status, reason=reason,
                      detail={"from": old})
        send_after_commit(room_status_changed, sender=LiveRoom, room=room, old_status=old, new_status=status)
    return room


# --- Media commands; implemented in streams/media_commands.py ------------
from .media_commands import (  # noqa: E402,F401
    MediaCommandError,
    end_slate,
    inject_demo_fault,
    reload_media_settings,
    request_keyframe,
    restart_line,
    switch_source,
)


# --- Viewer-facing services; implemented in streams/viewer_services.py ----------
# Thin forwarders so callers use streams.services.* and the two modules never import each other at load.

def pin_announcement(**kwargs):
    from .viewer_services import pin_announcement as impl
    return impl(**kwargs)


def unpin_announcement(**kwargs):
    from .viewer_services import unpin_announcement as impl
    return impl(**kwargs)


def send_host_cue(**kwargs):
    from .viewer_services import send_host_cue as impl
    return impl(**kwargs)


def notify_viewers(**kwargs):
    from .viewer_services import notify_viewers as impl
    return impl(**kwargs)


def refresh_viewer_panels(**kwargs):
    from .viewer_services import refresh_viewer_panels as impl
    return impl(**kwargs)


def deliver_to_viewers(**kwargs):
    from .viewer_services import deliver_to_viewers as impl
    return impl(**kwargs)
