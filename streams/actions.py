"""One-click actions from the wall: one table of who may do what, one dispatcher that checks it.

Every message is checked on the server: issue time (older than 3 s, e.g. replayed from the websocket
extension's queue after a reconnect, is refused), role, and the client nonce (a duplicate is refused,
never executed twice). Refusals are audited like everything else.
"""

import logging
import math
import random
import time
from datetime import timedelta
from dataclasses import dataclass

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from controlroom.middleware import error_reference
from controlroom.roles import require_capability

from . import hooks, services
from .models import ActionNonce, AnnouncementTemplate, ControlAction, LiveRoom

logger = logging.getLogger(__name__)

DEFAULT_APOLOGY = "家人们稍安勿躁,技术小哥正在全力抢修,预计{eta}分钟恢复!"
MAX_AGE_MS = 3000
MAX_CLOCK_AHEAD_MS = 3000  # a browser clock a little ahead is tolerated, not a message "from the future"


class ActionFailed(Exception):
    pass


@dataclass
class ActionResult:
    outcome: str  # ok | failed | refused
    label: str
    reason: str = ""
    latency_ms: float | None = None
    nonce: str = ""
    room: str = ""
    url: str = ""


def _line(data):
    line = data.get("line") or "primary"
    if line not in ("primary", "backup"):
        raise ActionFailed(_("未知线路"))
    return line


SOURCE_LABELS = {"backup": _("切到备用"), "primary": _("切回主线路"), "slate": _("播放垫片")}


def _switch_source(room, user, data):
    source = data.get("source")
    if source not in SOURCE_LABELS:
        raise ActionFailed(_("未知节目源"))
    return services.switch_source(room=room, source=source, actor=user, reason="manual: wall")


def _end_slate(room, user, data):
    return services.end_slate(room=room, actor=user, reason="manual: wall")


def _keyframe(room, user, data):
    return services.request_keyframe(room=room, line_role=_line(data), actor=user)


def _restart(room, user, data):
    return services.restart_line(room=room, line_role=_line(data), actor=user)


def _pin(room, user, data):
    template = None
    if data.get("template"):
        template = AnnouncementTemplate.objects.filter(pk=data["template"], is_active=True).first()
        if template is None:
            raise ActionFailed(_("公告模板不存在"))
    elif not (data.get("text") or "").strip():
        kind = data.get("kind") if data.get("kind") in AnnouncementTemplate.Kind.values else "apology"
        template = AnnouncementTemplate.objects.filter(kind=kind, is_active=True).first()
        if template is None and kind != "apology":
            raise ActionFailed(_("没有可用的公告模板"))
    eta = data.get("eta")
    try:
        eta = int(eta) if eta not in (None, "") else (template.default_eta_minutes if template else None)
    except (TypeError, ValueError):
        raise ActionFailed(_("预计分钟必须是整数")) from None
    if eta is not None and not 0 <= eta <= 600:
        raise ActionFailed(_("预计分钟超出范围"))
    text = data.get("text") or ""
    if template is None and not text.strip():
        # One-click apology with no template configured: the built-in wording, never an empty banner.
        text = DEFAULT_APOLOGY.replace("{eta}", str(eta if eta is not None else 5))
    return services.pin_announcement(room=room, actor=user, text=text, template=template, eta_minutes=eta)


def _unpin(room, user, data):
    if services.unpin_announcement(room=room, actor=user) is None:
        raise ActionFailed(_("当前没有置顶公告"))


def _cue(room, user, data):
    return services.send_host_cue(room=room, actor=user, text=data.get("text") or "")


def _chat_reply(room, user, data):
    from .models import CannedReply
    from .viewer_services import post_chat_reply

    text = data.get("text") or ""
    if data.get("canned"):
        reply = CannedReply.objects.filter(pk=data["canned"], is_active=True).first()
        if reply is None:
            raise ActionFailed(_("快捷回复不存在"))
        text = reply.text
    return post_chat_reply(room=room, actor=user, text=text)


def _open_incident(room, user, data):
    handler = hooks.open_incident_handler()
    if handler is None:
        raise ActionFailed(_("事故模块未启用"))
    return handler(room=room, actor=user)


def _ack_alert(room, user, data):
    from .models import Alert

    try:
        alert_id = int(data.get("alert"))
    except (TypeError, ValueError):
        raise ActionFailed(_("未知告警")) from None
    if not Alert.objects.filter(pk=alert_id, room=room).exists():
        raise ActionFailed(_("未知告警"))
    return services.acknowledge_alert(alert_id=alert_id, user=user)


def _ack_room_alerts(room, user, data):
    return services.acknowledge_room_alerts(room=room, user=user)


# name -> (function, label shown on the button result); who may run it: controlroom.roles.CAPABILITIES
ACTIONS = {
    "switch_source": (_switch_source, _("切换节目源")),
    "end_slate": (_end_slate, _("结束垫片")),
    "request_keyframe": (_keyframe, _("请求关键帧")),
    "restart_line": (_restart, _("重启线路")),
    "pin_announcement": (_pin, _("置顶公告")),
    "unpin_announcement": (_unpin, _("取消置顶")),
    "send_host_cue": (_cue, _("发送提词")),
    "post_chat_reply": (_chat_reply, _("快捷回复")),
    "open_incident": (_open_incident, _("创建事故")),
    "acknowledge_alert": (_ack_alert, _("确认告警")),
    "acknowledge_room_alerts": (_ack_room_alerts, _("确认本直播间全部告警")),
}


def _refuse(user, room, name, nonce, reason):
    services.record_action(actor=user, action=name if name in ACTIONS else "unknown_action", room=room,
                           outcome=ControlAction.Outcome.REFUSED, reason=str(reason), detail={"nonce": nonce})
    return ActionResult("refused", str(ACTIONS[name][1]) if name in ACTIONS else name, str(reason), nonce=nonce,
                        room=room.slug if room else "")


def perform_action(user, data, now_ms=None):
    """Check and run one action message {action, room, nonce, issued_at, ...}; never raises."""
    now_ms = now_ms if now_ms is not None else time.time() * 1000
    name = str(data.get("action") or "")
    nonce = str(data.get("nonce") or "")[:64]
    room = LiveRoom.objects.filter(slug=str(data.get("room") or "")).first()
    if name not in ACTIONS:
        return _refuse(user, room, name, nonce, _("未知操作"))
    run, label = ACTIONS[name]
    if name == "switch_source" and data.get("source") in SOURCE_LABELS:
        label = SOURCE_LABELS[data["source"]]
    if room is None:
        return ActionResult("refused", str(label), str(_("未知直播间")), nonce=nonce)
    try:
        issued_at = float(data.get("issued_at"))
    except (TypeError, ValueError):
        return _refuse(user, room, name, nonce, _("缺少发出时间"))
    if not math.isfinite(issued_at):  # NaN compares false with everything: it would pass the age check
        return _refuse(user, room, name, nonce, _("缺少发出时间"))
    if now_ms - issued_at > MAX_AGE_MS or issued_at - now_ms > MAX_CLOCK_AHEAD_MS:
        return _refuse(user, room, name, nonce, _("操作已过期(超过3秒),未执行"))
    try:
        require_capability(user, name, what=f"{name} {room.slug}")
    except PermissionDenied:
        return _refuse(user, room, name, nonce, _("无权执行此操作"))
    if len(nonce) < 8:
        return _refuse(user, room, name, nonce, _("缺少随机数"))
    try:
        with transaction.atomic():
            ActionNonce.objects.create(nonce=nonce, user=user)
            if random.random() < 0.01:
                # Replays older than MAX_AGE_MS are refused by age already; an hour of nonces is plenty.
                ActionNonce.objects.filter(created_at__lt=timezone.now() - timedelta(hours=1)).delete()
    except IntegrityError:
        return _refuse(user, room, name, nonce, _("重复的操作(已执行过),未再次执行"))

    started = time.monotonic()
    try:
        result = run(room, user, data)
    except (ActionFailed, ValidationError) as exc:
        reason = "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
        services.record_action(actor=user, action=name, room=room, outcome=ControlAction.Outcome.FAILED,
                               reason=reason, detail={"nonce": nonce})
        return ActionResult("failed", str(label), reason, nonce=nonce, room=room.slug)
    except Exception as exc:  # noqa: BLE001 - MediaCommandError (already audited by the media service) and bugs
        if type(exc).__name__ == "MediaCommandError":  # the media service's own message, already audited
            logger.warning("action %s on %s failed: %s", name, room.slug, exc)
            return ActionResult("failed", str(label), str(exc)[:200] or type(exc).__name__, nonce=nonce,
                                room=room.slug)
        # A bug: its text (code, SQL, data) goes to the log under an id; the user gets the id to quote.
        error_id = error_reference()
        logger.exception("action %s on %s failed: internal error %s", name, room.slug, error_id)
        reason = str(_("内部错误(编号 %(id)s)") % {"id": error_id})
        services.record_action(actor=user, action=name, room=room, outcome=ControlAction.Outcome.FAILED,
                               reason=reason, detail={"nonce": nonce, "error_id": error_id})
        return ActionResult("failed", str(label), reason, nonce=nonce, room=room.slug)
    latency = getattr(result, "latency_ms", None) if isinstance(result, ControlAction) else None
    if latency is None:
        latency = (time.monotonic() - started) * 1000
    url = ""
    if hasattr(result, "get_absolute_url"):
        try:
            url = result.get_absolute_url()
        except Exception:  # noqa: BLE001
            url = ""
    return ActionResult("ok", str(label), latency_ms=round(latency, 1), nonce=nonce, room=room.slug, url=url)
