"""Writes for RTMP ingest lines, on the ingest edge's word (nginx-rtmp's on_publish / on_publish_done).

The encoder is authorised by its stream key `<room>.<line>.<token>`: the line must take RTMP and the token
must match the line's publish token (a constant-time compare of hashes). An accepted publish records the
edge's client id on the line (the media worker pulls the line while it is set) and an audit row; a refused
one against a real line is audited too (someone holds a wrong or old key). The stream key is a secret: it
is never written to the audit detail or the log.
"""

from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from controlroom.roles import require_capability

from .models import ControlAction, IngestLine, LiveRoom
from .services import record_action

EDGE = "rtmp_edge"  # ControlAction.actor_label of what the edge reports


@dataclass
class PublishDecision:
    line: IngestLine | None
    refusal: str = ""  # why the publish is refused; empty when accepted


def _refuse(line, reason, detail):
    if line is not None:
        record_action(actor=None, actor_label=EDGE, action="rtmp_publish", room=line.room, target=line.role,
                      outcome=ControlAction.Outcome.REFUSED, reason=reason, detail=detail)
    return PublishDecision(line, reason)


def do_start_rtmp_publish(*, key, client_id, addr):
    """The edge asks whether this encoder may publish `key`."""
    parsed = IngestLine.parse_rtmp_key(key)
    if parsed is None or not parsed[2]:
        return PublishDecision(None, "malformed stream key")
    slug, role, token = parsed
    detail = {"client": client_id, "addr": addr}
    with transaction.atomic():
        line = (IngestLine.objects.select_for_update(of=("self",)).select_related("room")
                .filter(room__slug=slug, role=role).first())
        if line is None:
            return PublishDecision(None, "no such line")
        if not line.check_token(token):
            return _refuse(line, "wrong stream key", detail)
        if line.kind != IngestLine.Kind.RTMP:
            return _refuse(line, "this line takes WHIP, not RTMP", detail)
        if line.room.status == LiveRoom.Status.ENDED:
            return _refuse(line, "the room has ended", detail)
        replaced = line.rtmp_client
        line.rtmp_client = client_id
        line.state = IngestLine.State.CONNECTING
        line.state_changed_at = timezone.now()
        line.save(update_fields=["rtmp_client", "state", "state_changed_at"])
        record_action(actor=None, actor_label=EDGE, action="rtmp_publish", room=line.room, target=role,
                      detail={**detail, **({"replaced_client": replaced} if replaced else {})})
    return PublishDecision(line)


def do_end_rtmp_publish(*, key, client_id, addr):
    """The edge reports that a publisher stopped. Only the line's current publisher clears it: a late report
    about a publisher that was already replaced changes nothing. Returns the line when it was cleared."""
    parsed = IngestLine.parse_rtmp_key(key)
    if parsed is None:
        return None
    slug, role, _token = parsed
    with transaction.atomic():
        line = (IngestLine.objects.select_for_update(of=("self",)).select_related("room")
                .filter(room__slug=slug, role=role, kind=IngestLine.Kind.RTMP).first())
        if line is None or not line.rtmp_client or line.rtmp_client != client_id:
            return None
        line.rtmp_client = ""
        line.state = IngestLine.State.IDLE
        line.state_changed_at = timezone.now()
        line.save(update_fields=["rtmp_client", "state", "state_changed_at"])
        record_action(actor=None, actor_label=EDGE, action="rtmp_publish_done", room=line.room, target=role,
                      detail={"client": client_id, "addr": addr})
    return line


def do_set_line_kind(*, user, line, kind, new_key=False):
    """Make a line take WHIP or RTMP (and optionally issue a new publish key). Returns (line, raw key or None):
    the raw key is shown once and never stored. Leaving RTMP lets go of the edge's publisher; the media worker
    follows within its settings refresh."""
    require_capability(user, "edit_ingest_lines", what=f"set line kind {line}")
    if kind not in IngestLine.Kind.values:
        raise ValueError(f"unknown line kind {kind!r}")
    raw = None
    with transaction.atomic():
        line = IngestLine.objects.select_for_update(of=("self",)).select_related("room").get(pk=line.pk)
        previous = line.kind
        fields = []
        if kind != previous:
            line.kind = kind
            line.rtmp_client = ""
            fields += ["kind", "rtmp_client"]
        if new_key:
            raw = line.set_token()
            fields += ["token_hash", "token_hint"]
        if not fields:
            return line, None
        line.save(update_fields=fields)
        record_action(actor=user, action="ingest_line_edit", room=line.room, target=line.role,
                      detail={"from": previous, "to": kind, "new_key": bool(new_key)})
    return line, raw
