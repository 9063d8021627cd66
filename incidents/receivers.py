"""Subscribers to streams signals: auto-open incidents and fill timelines.

streams sends its signals after its transaction commits: these run in their own transactions, never
inside the media worker's or an operator's, so they cannot delay or roll back the action they mirror.
"""

import logging

from django.db import transaction
from django.dispatch import receiver
from django.utils.translation import gettext_noop as N_

from streams.models import Alert, LiveRoom
from streams.signals import alert_acknowledged, alert_raised, alert_repeated, control_action_recorded

from . import services
from .messages import ACTOR_LABELS, concat, label, message
from .models import OPEN_STATUSES, Incident, TimelineKind

logger = logging.getLogger(__name__)


# The failover trigger decides the type of an automatically opened incident.
AUTO_TRIGGER_TYPE = {
    "input_loss": "stream-interruption",
    "frozen": "weak-network",
    "black": "device-failure",
    "silence": "device-failure",
}
ALERT_KIND_TYPE = {
    Alert.Kind.LINE_DOWN: "stream-interruption",
    Alert.Kind.AUTO_FAILOVER: "stream-interruption",
    Alert.Kind.FAILOVER_HOLD: "stream-interruption",
    Alert.Kind.LINE_DEGRADED: "weak-network",
    Alert.Kind.LINE_RECOVERED: "other",
    Alert.Kind.OTHER: "other",
}

# ControlAction.action -> timeline kind. Our own audit actions are not mirrored.
ACTION_KIND = {
    "switch_source": TimelineKind.SWITCH,
    "end_slate": TimelineKind.SWITCH,
    "failover_hold": TimelineKind.SWITCH,
    "pin_announcement": TimelineKind.ANNOUNCEMENT,
    "unpin_announcement": TimelineKind.ANNOUNCEMENT,
    "send_host_cue": TimelineKind.HOST_CUE,
    "ack_host_cue": TimelineKind.HOST_CUE,
    "post_chat_reply": TimelineKind.CONTROL,
    "request_keyframe": TimelineKind.CONTROL,
    "restart_line": TimelineKind.CONTROL,
    "publisher_connected": TimelineKind.CONTROL,
    "publisher_replaced": TimelineKind.CONTROL,
    "publisher_left": TimelineKind.CONTROL,
    "set_room_status": TimelineKind.CONTROL,
}


# Control actions without a sentence of their own: their label, and the line they touched.
ACTION_LABELS = {
    "request_keyframe": N_("请求关键帧"),
    "restart_line": N_("重启推流线路"),
    "publisher_connected": N_("推流端已连接"),
    "publisher_replaced": N_("推流端被替换"),
    "publisher_left": N_("推流端已断开"),
    "set_room_status": N_("直播间状态变更"),
    "post_chat_reply": N_("回复观众评论"),
    "failover_hold": N_("自动切换已暂停(防抖)"),
}


def describe_action(row):
    """A one-line message (incidents.messages) for a control action on the timeline."""
    who = row.actor.get_username() if row.actor_id else label(ACTOR_LABELS.get(row.actor_label or "system",
                                                                              row.actor_label))
    detail = row.detail or {}
    failed = "" if row.outcome == "ok" else message(N_("【%(outcome)s】"), outcome=label(row.get_outcome_display()))
    latency = (message(N_(",首帧 %(ms)s 毫秒"), ms=round(row.latency_ms)) if row.latency_ms is not None else "")
    if row.action == "switch_source":
        text = concat(message(N_("切换节目源 %(src)s → %(dst)s"), src=services.line_label(detail.get("from")),
                              dst=services.line_label(row.target)), latency)
    elif row.action == "end_slate":
        dst = services.line_label(row.target) if row.target else label(N_("直播画面"))
        text = concat(message(N_("结束垫片,回到 %(dst)s"), dst=dst), latency)
    elif row.action == "pin_announcement":
        text = message(N_("置顶公告:%(text)s"), text=detail.get("text") or row.reason or row.target)
    elif row.action == "unpin_announcement":
        text = label(N_("取消置顶公告"))
    elif row.action == "send_host_cue":
        text = message(N_("主播提示:%(text)s"), text=detail.get("text") or row.reason or row.target)
    elif row.action == "ack_host_cue":
        text = label(N_("主播已确认提示"))
    elif row.action == "set_room_status":
        statuses = dict(LiveRoom.Status.choices)
        text = concat(label(ACTION_LABELS[row.action]), ":",
                      label(statuses[row.target]) if row.target in statuses else row.target)
    elif row.action in ACTION_LABELS:
        text = label(ACTION_LABELS[row.action])
        if row.target in dict(LiveRoom.Source.choices):
            text = concat(text, ":", services.line_label(row.target))
    else:
        text = label(N_("操作"))
    if row.reason and row.action in ("switch_source", "end_slate", "failover_hold"):
        text = concat(text, message(N_("(%(reason)s)"), reason=services.reason_param(row.reason)))
    return concat(failed, text, " · ", who)


@receiver(control_action_recorded, dispatch_uid="incidents.on_control_action")
def on_control_action(sender, action, **kwargs):
    row = action
    kind = ACTION_KIND.get(row.action)
    if kind is None or row.room_id is None:
        return
    with transaction.atomic():
        if (row.action == "switch_source" and row.reason.startswith("auto:")
                and row.outcome == "ok"):
            trigger = row.reason[len("auto:"):].strip().split()[0] if row.reason[len("auto:"):].strip() else ""
            services.open_incident(
                room=row.room, incident_type=AUTO_TRIGGER_TYPE.get(trigger, "stream-interruption"), actor=None,
                source="auto_failover",
                title_msg=message(N_("%(room)s 自动切换(%(trigger)s)"), room=row.room.name,
                                  trigger=services.reason_param(row.reason)),
            )
        # Mirror the action onto every open incident of the room (usually one).
        for incident in Incident.objects.filter(room_id=row.room_id, status__in=OPEN_STATUSES):
            data = {"control_action": row.pk, "action": row.action, "target": row.target,
                    "outcome": row.outcome, "latency_ms": row.latency_ms}
            if row.action == "switch_source":
                data["from"] = (row.detail or {}).get("from")
            services.add_timeline_entry(incident=incident, kind=kind, message=describe_action(row),
                                        actor=row.actor, data=data, at=row.created_at,
                                        actor_label=row.actor_label)


def alert_entry_message(alert):
    text = message(N_("告警[%(kind)s]%(msg)s"), kind=label(alert.get_kind_display()), msg=services.alert_param(alert))
    if alert.count > 1:
        text = concat(text, message(N_("(共 %(n)s 次)"), n=alert.count))
    return text


@receiver(alert_raised, dispatch_uid="incidents.on_alert_raised")
def on_alert_raised(sender, alert, **kwargs):
    with transaction.atomic():
        attached = False
        for incident in Incident.objects.filter(room_id=alert.room_id, status__in=OPEN_STATUSES, is_drill=False):
            services.add_timeline_entry(
                incident=incident, kind=TimelineKind.ALERT, actor_label="mediaworker", at=alert.raised_at,
                message=alert_entry_message(alert),
                data={"alert_id": alert.pk, "kind": alert.kind, "line_role": alert.line_role,
                      "severity": alert.severity})
            attached = True
        if alert.kind == Alert.Kind.LINE_DOWN and not attached:
            down_ms = (alert.detail or {}).get("down_ms")
            if down_ms is not None and down_ms >= services.line_down_threshold_s() * 1000:
                # The media worker already knows the line has been down long enough.
                services.check_lines_down(threshold_s=0)
            else:
                from .tasks import schedule_line_down_check

                schedule_line_down_check(alert.pk)


@receiver(alert_repeated, dispatch_uid="incidents.on_alert_repeated")
def on_alert_repeated(sender, alert, **kwargs):
    """A repeat of an open alert updates its timeline entry (text, count) instead of adding one."""
    services.update_alert_entries(alert_id=alert.pk, room_id=alert.room_id, message=alert_entry_message(alert),
                                  count=alert.count, last_seen_at=alert.last_seen_at)


@receiver(alert_acknowledged, dispatch_uid="incidents.on_alert_acknowledged")
def on_alert_acknowledged(sender, alert, user, **kwargs):
    if alert.acknowledged_as != Alert.AckAs.INCIDENT:
        return
    with transaction.atomic():
        incident = services.open_incident(
            room=alert.room, incident_type=ALERT_KIND_TYPE.get(alert.kind, "other"), actor=user, source="alert",
            title_msg=message("%(room)s · %(alert)s", room=alert.room.name, alert=services.alert_param(alert)),
        )
        if not any(e.data.get("alert_id") == alert.pk for e in incident.timeline.filter(kind=TimelineKind.ALERT)):
            services.add_timeline_entry(
                incident=incident, kind=TimelineKind.ALERT, actor=user, at=alert.raised_at,
                message=message(N_("告警[%(kind)s]%(msg)s(确认为事故)"), kind=label(alert.get_kind_display()),
                                msg=services.alert_param(alert)),
                data={"alert_id": alert.pk, "kind": alert.kind, "line_role": alert.line_role})
        # Whoever turned the alert into an incident has acknowledged it.
        if incident.status == Incident.Status.DETECTED:
            services.transition(incident=incident, to=Incident.Status.ACKNOWLEDGED, actor=user,
                                reason=N_("告警转为事故"))
