"""Media commands (switch program source, end slate, keyframe, restart line): ask the media worker,
wait for its acknowledgement, then record the ControlAction. Re-exported by streams.services.

latency_ms = time from the worker receiving the command until the first frame of the new source
entered the program output (the acknowledgement). If the worker is unreachable or refuses, the
action is recorded with outcome failed/refused and MediaCommandError is raised.
"""

import math
from datetime import datetime
from datetime import timezone as dt_timezone

from django.db import transaction
from django.utils.translation import gettext as _

from controlroom.roles import require_capability

from .models import ControlAction, LiveRoom

SOURCES = ("primary", "backup", "slate")
LINE_ROLES = ("primary", "backup")


class MediaCommandError(Exception):
    """The media worker could not carry out a command (unreachable, refused, timed out)."""


def _check_actor(actor, capability):
    # People must hold the capability; rules/tools acting without a user pass actor=None with an actor_label.
    if actor is not None:
        require_capability(actor, capability)


def _ask_worker(*, room, action, target, actor, reason, actor_label, op, **kwargs):
    from .mediaworker import client
    from .media.engine import CommandError
    from .services import record_action

    try:
        return client.call_sync(op, room.slug, **kwargs)
    except (CommandError, client.MediaUnavailable, TimeoutError) as exc:
        refused = isinstance(exc, CommandError)
        record_action(actor=actor, actor_label=actor_label, action=action, room=room, target=target, reason=reason,
                      outcome=ControlAction.Outcome.REFUSED if refused else ControlAction.Outcome.FAILED,
                      detail={"error": str(exc) or type(exc).__name__})
        raise MediaCommandError(str(exc) or type(exc).__name__) from exc


def _iso(ts):
    return datetime.fromtimestamp(ts, dt_timezone.utc).isoformat() if ts else None


def _manual(reason):
    reason = (reason or "").strip()
    if reason.startswith(("manual", "auto:")):
        return reason
    return f"manual: {reason}" if reason else "manual"


def _apply_source(room, ack, **kwargs):
    """The worker has switched (viewers see it): record it, retrying a refused write; if that still fails,
    say so — the operator must not read "failed" about a cut that happened."""
    from controlroom.db import StillFailing, retry_write

    try:
        return retry_write(_record_source, room, ack, **kwargs)
    except StillFailing as exc:
        sources = dict(LiveRoom.Source.choices)
        raise MediaCommandError(
            _("节目已切到%(to)s(观众已看到),但记录未能写入(%(error)s):直播间状态与审计暂未更新,请刷新核对")
            % {"to": sources.get(ack["to"], ack["to"]), "error": exc}) from exc


def _record_source(room, ack, *, action, actor, actor_label, reason):
    from .services import record_action

    with transaction.atomic():
        locked = LiveRoom.objects.select_for_update().get(pk=room.pk)
        previous = locked.program_source
        target = ack["to"]
        if target == "slate" and previous != "slate":
            locked.source_before_slate = previous
        locked.program_source = target
        locked.save(update_fields=["program_source", "source_before_slate"])
        room.program_source, room.source_before_slate = locked.program_source, locked.source_before_slate
        detail = {"from": ack.get("from", previous), "to": target, "first_frame_at": _iso(ack.get("first_frame_at")),
                  "latency_ms": ack.get("latency_ms")}
        if ack.get("unchanged"):
            detail["unchanged"] = True
        return record_action(actor=actor, actor_label=actor_label, action=action, room=locked, target=target,
                             reason=reason, latency_ms=ack.get("latency_ms"), detail=detail)


def switch_source(*, room, source, actor, reason="", actor_label=""):
    """Cut the room's program output to primary, backup or slate; returns the ControlAction."""
    _check_actor(actor, "switch_source")
    reason = reason if actor_label == "auto" else _manual(reason)
    if source not in SOURCES:
        from .services import record_action

        record_action(actor=actor, actor_label=actor_label, action="switch_source", room=room, target=str(source)[:64],
                      reason=reason, outcome=ControlAction.Outcome.REFUSED, detail={"error": "unknown source"})
        raise MediaCommandError(f"unknown source {source!r}; use primary, backup or slate")
    ack = _ask_worker(room=room, action="switch_source", target=source, actor=actor, reason=reason,
                      actor_label=actor_label, op="switch_source", source=source)
    return _apply_source(room, ack, action="switch_source", actor=actor, actor_label=actor_label, reason=reason)


def end_slate(*, room, actor, reason=""):
    """Leave the slate, back to the line that was on air before it."""
    _check_actor(actor, "end_slate")
    reason = _manual(reason)
    ack = _ask_worker(room=room, action="end_slate", target=room.source_before_slate, actor=actor, reason=reason,
                      actor_label="", op="end_slate")
    return _apply_source(room, ack, action="end_slate", actor=actor, actor_label="", reason=reason)


def request_keyframe(*, room, line_role, actor):
    """Ask a line's publisher (PLI) or the program encoder ("program") for a keyframe."""
    _check_actor(actor, "request_keyframe")
    from .services import record_action

    ack = _ask_worker(room=room, action="request_keyframe", target=line_role, actor=actor, reason="",
                      actor_label="", op="request_keyframe", line_role=line_role)
    return record_action(actor=actor, action="request_keyframe", room=room, target=line_role,
                         latency_ms=ack.get("latency_ms"),
                         detail={"first_frame_at": _iso(ack.get("first_frame_at")), "pli_sent": ack.get("pli_sent")})


def restart_line(*, room, line_role, actor):
    """Drop a line's publisher so its encoder reconnects (WHIP clients re-POST)."""
    _check_actor(actor, "restart_line")
    from .services import record_action

    if line_role not in LINE_ROLES:
        record_action(actor=actor, action="restart_line", room=room, target=str(line_role)[:64],
                      outcome=ControlAction.Outcome.REFUSED, detail={"error": "unknown line"})
        raise MediaCommandError(f"unknown line {line_role!r}; use primary or backup")
    ack = _ask_worker(room=room, action="restart_line", target=line_role, actor=actor, reason="",
                      actor_label="", op="restart_line", line_role=line_role)
    return record_action(actor=actor, action="restart_line", room=room, target=line_role,
                         latency_ms=ack.get("latency_ms"), detail={"had_publisher": ack.get("had_publisher")})


def inject_demo_fault(*, room, line_role, fault, actor=None, duration_s=None):
    """Demo only: make `simulate_streams` misbehave on one line (stall, black, silence, weak, none)."""
    _check_actor(actor, "inject_demo_fault")
    from .media import simulator
    from .mediaworker import demo
    from .services import record_action

    if line_role not in LINE_ROLES or fault not in simulator.FAULTS:
        raise MediaCommandError(_("请选择主线路或备用线路,以及一种故障"))
    if duration_s is not None and not (math.isfinite(duration_s) and 0 < duration_s <= 3600):
        raise MediaCommandError(_("故障持续时间须在 0–3600 秒之间"))  # NaN or inf would never expire
    demo.write_fault(room.slug, line_role, fault, duration_s)
    return record_action(actor=actor, actor_label="" if actor else "system", action="inject_demo_fault", room=room,
                         target=line_role, reason=f"demo: {fault}", detail={"fault": fault, "duration_s": duration_s})


def reload_media_settings(*, room):
    """Tell the media worker to re-read the room's failover settings / slate now (else within ~3 s)."""
    from .mediaworker import client

    try:
        return client.call_sync("reload", room.slug)
    except Exception as exc:  # not running: it reads the settings when it starts the room
        return {"ok": False, "error": str(exc)}
