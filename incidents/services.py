"""Incident writes. Zulip-style: one transaction, the acting user, an audit row through
`streams.services.record_action`, and live pushes after commit (incidents.events)."""

import logging

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import DatabaseError, transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop as N_

from controlroom.middleware import has_control_characters
from controlroom.roles import MANAGER, has_role, roles_of
from streams import selectors as stream_selectors
from streams import services as stream_services
from streams.models import IngestLine, LiveRoom, LiveSession, ViewerSession

from . import events
from .messages import bilingual, items, label, message, render_stored
from .models import (
    MILESTONE_OF_STATUS,
    MILESTONES,
    OPEN_STATUSES,
    TRANSITIONS,
    Incident,
    IncidentReview,
    IncidentStep,
    IncidentTimelineEntry,
    IncidentType,
    ReviewActionItem,
    Runbook,
    RunbookStep,
    StepAction,
    TimelineKind,
)

logger = logging.getLogger(__name__)


class IncidentRuleError(ValidationError):
    """A request the lifecycle rules refuse; the message says why and what is allowed."""


def _label(user):
    return "" if getattr(user, "is_authenticated", False) else "auto"


def _user(user):
    return user if getattr(user, "is_authenticated", False) else None


def _audit(actor, action, incident, reason="", detail=None):
    stream_services.record_action(
        actor=_user(actor), actor_label=_label(actor), action=action, room=incident.room,
        target=str(incident.pk), reason=reason, detail=detail or {},
    )


# --- Context at detection -------------------------------------------------------------------

def capture_context(room):
    """What was on air when the incident was detected: viewers, source, host, line health."""
    now = timezone.now()
    session = LiveSession.objects.filter(room=room, ended_at__isnull=True).order_by("-started_at").first()
    lines = {}
    for line in IngestLine.objects.filter(room=room):
        lines[line.role] = {"state": line.state}
    for role in ("primary", "backup", "program"):
        sample = stream_selectors.newest_sample(room, role, now)
        if sample is not None:
            lines.setdefault(role, {}).update({
                "sampled_at": sample.at.isoformat(), "connected": sample.connected,
                "bitrate_kbps": sample.bitrate_kbps, "fps": sample.fps, "loss_pct": sample.loss_pct,
                "jitter_ms": sample.jitter_ms, "frozen": sample.frozen, "black": sample.black,
                "silent": sample.silent, "audio_dbfs": sample.audio_dbfs,
            })
    return {
        "captured_at": now.isoformat(),
        "room": {"slug": room.slug, "name": room.name, "merchant": room.merchant, "status": room.status},
        "host": room.host_name,
        # Open sessions with a fresh heartbeat (a crashed web process leaves stale open ones).
        "viewers": ViewerSession.objects.filter(room=room, left_at__isnull=True,
                                                last_seen_at__gte=now - timezone.timedelta(seconds=30))
                                        .values("viewer_id").distinct().count(),
        "program_source": room.program_source,
        "live_session_started_at": session.started_at.isoformat() if session else None,
        "lines": lines,
    }


# --- Opening ----------------------------------------------------------------------------------

def open_incident(*, room, incident_type, actor, severity=None, title="", title_msg=None, is_drill=False,
                  source="manual"):
    """Open an incident for the room, or return the open one of the same type (dedupe).

    A generated title is passed as `title_msg` (a message, shown in the reader's language); a typed
    one as `title`.

    A repeated detection attaches to the open incident as a timeline entry; the returned
    incident then has `.deduplicated = True`.
    """
    if isinstance(incident_type, str):
        incident_type = IncidentType.objects.get(slug=incident_type)
    with transaction.atomic():
        # Serialise opens per room so two detections cannot both create one.
        room = LiveRoom.objects.select_for_update().get(pk=room.pk)
        existing = (Incident.objects.select_for_update()
                    .filter(room=room, incident_type=incident_type, is_drill=is_drill, status__in=OPEN_STATUSES)
                    .first())
        if existing is not None:
            what = title_msg or title or bilingual(existing.incident_type.name, existing.incident_type.name_en)
            add_timeline_entry(incident=existing, kind=TimelineKind.DETECTION, actor=actor,
                               message=message(N_("再次检测到:%(what)s"), what=what),
                               data={"source": source, "repeat": True}, actor_label=_label(actor))
            existing.deduplicated = True
            return existing
        runbook = incident_type.current_runbook()
        now = timezone.now()
        if not title and not title_msg:
            title_msg = message("%(room)s · %(type)s", room=room.name,
                                type=bilingual(incident_type.name, incident_type.name_en))
        incident = Incident.objects.create(
            room=room, incident_type=incident_type,
            severity=severity or incident_type.default_severity,
            title=(render_stored(title_msg) if title_msg else title)[:200], title_msg=title_msg or {},
            is_drill=is_drill, source=source, runbook=runbook, detected_at=now,
            context=capture_context(room), created_by=_user(actor),
        )
        if runbook is not None:
            IncidentStep.objects.bulk_create([
                IncidentStep(incident=incident, runbook_step=s, role=s.role, position=s.position, title=s.title,
                             instructions=s.instructions, title_en=s.title_en, instructions_en=s.instructions_en,
                             action=s.action, action_param=s.action_param, available_at=now)
                for s in runbook.steps.all()
            ])
        add_timeline_entry(
            incident=incident, kind=TimelineKind.DETECTION, actor=actor, at=now,
            message=message(N_("%(drill)s发现事故:%(title)s(来源:%(source)s)"),
                            drill=label(N_("【演练】")) if is_drill else "", title=title_msg or incident.title,
                            source=label(incident.source_label)),
            data={"source": source, "viewers": incident.context.get("viewers"),
                  "program_source": room.program_source},
            actor_label=_label(actor),
        )
        _audit(actor, "open_incident", incident, reason=source,
               detail={"type": incident_type.slug, "severity": incident.severity, "drill": is_drill})
        incident.deduplicated = False
        events.push_incident_on_commit(incident.pk, new=True)
        if incident.pages_people:
            from . import paging

            transaction.on_commit(lambda: paging.page_on_commit(incident.pk))
    return incident


# --- Timeline ---------------------------------------------------------------------------------

def add_timeline_entry(*, incident, kind, text="", message=None, actor=None, data=None, at=None, actor_label=""):
    """Append a typed entry to the incident's timeline (and push it live after commit).

    Text the system writes comes as `message` (incidents.messages): it is shown in the reader's language,
    and its Chinese rendering is stored as `text` for search and exports. What a person typed is `text`.
    `actor_label` names a non-user actor ("auto", "mediaworker"); default "system".
    """
    if message is not None:
        text = render_stored(message)
        data = {**(data or {}), "msg": message}
    with transaction.atomic():
        entry = IncidentTimelineEntry.objects.create(
            incident=incident, kind=kind, text=str(text)[:500], actor=_user(actor),
            actor_label="" if _user(actor) else (actor_label or "system"),
            data=data or {}, at=at or timezone.now(),
        )
        if kind == TimelineKind.ANNOUNCEMENT:
            Incident.objects.filter(pk=incident.pk, first_announcement_at__isnull=True).update(
                first_announcement_at=entry.at)
        events.push_incident_on_commit(incident.pk, parts=("timeline",))
    return entry


def update_alert_entries(*, alert_id, room_id, message, count, last_seen_at):
    """A repeated alert: its timeline entries (one per open incident of the room) say how often, in place.

    Entries are append-only for people; this is the one in-place change, and only of an alert's own entry.
    """
    with transaction.atomic():
        entries = list(IncidentTimelineEntry.objects.select_for_update()
                       .filter(incident__room_id=room_id, kind=TimelineKind.ALERT, data__alert_id=alert_id))
        for entry in entries:
            data = {**entry.data, "count": count, "last_seen_at": last_seen_at.isoformat(), "msg": message}
            IncidentTimelineEntry.objects.filter(pk=entry.pk).update(text=render_stored(message)[:500], data=data)
        for incident_id in {entry.incident_id for entry in entries}:
            events.push_incident_on_commit(incident_id, parts=("timeline",))
    return len(entries)


def add_note(*, incident, text, actor):
    text = (text or "").strip() if isinstance(text, str) else ""
    if not text:
        raise IncidentRuleError(_("备注内容不能为空。"))
    if has_control_characters(text):
        raise IncidentRuleError(_("备注包含不允许的控制字符(如 NUL)。"))
    with transaction.atomic():
        entry = add_timeline_entry(incident=incident, kind=TimelineKind.NOTE, text=text, actor=actor)
        _audit(actor, "incident_note", incident, detail={"entry": entry.pk})
    return entry


def set_pinned(*, entry, pinned, actor):
    with transaction.atomic():
        entry = IncidentTimelineEntry.objects.select_for_update().select_related("incident__room").get(pk=entry.pk)
        if entry.pinned != pinned:
            entry.pinned = pinned
            entry.save(update_fields=["pinned"])
            _audit(actor, "incident_pin_entry" if pinned else "incident_unpin_entry", entry.incident,
                   detail={"entry": entry.pk})
            events.push_incident_on_commit(entry.incident_id, parts=("timeline",))
    return entry


# --- Lifecycle ----------------------------------------------------------------------------------

def _locked(incident):
    return Incident.objects.select_for_update().select_related("room", "incident_type").get(pk=incident.pk)


def transition(*, incident, to, actor, cause=None, handling=None, outcome=None, reason=""):
    """Move the incident along its lifecycle; refuse invalid moves with a clear message."""
    labels = dict(Incident.Status.choices)
    if to not in labels:
        raise IncidentRuleError(_("未知状态:%(to)s") % {"to": to})
    with transaction.atomic():
        incident = _locked(incident)
        allowed = TRANSITIONS[incident.status]
        if to not in allowed:
            if allowed:
                nexts = "、".join(str(labels[s]) for s in allowed)
                msg = _("不能从「%(from)s」变为「%(to)s」;当前只能变为:%(next)s。") % {
                    "from": labels[incident.status], "to": labels[to], "next": nexts}
            else:
                msg = _("事故已「%(from)s」,不能再变为「%(to)s」。") % {"from": labels[incident.status], "to": labels[to]}
            raise IncidentRuleError(msg)
        if to == Incident.Status.REVIEWED and not has_role(actor, MANAGER):
            raise PermissionDenied("only managers sign off reviews")
        for field, value in (("cause", cause), ("handling", handling), ("outcome", outcome)):
            if value is not None:
                setattr(incident, field, value.strip())
        if to == Incident.Status.RESOLVED:
            missing = [str(Incident._meta.get_field(f).verbose_name) for f in ("cause", "handling", "outcome")
                       if not getattr(incident, f).strip()]
            if missing:
                raise IncidentRuleError(_("结案前请填写:%(fields)s。") % {"fields": "、".join(missing)})
        if to == Incident.Status.CANCELLED and not (reason or "").strip():
            raise IncidentRuleError(_("取消事故需要填写原因。"))
        now = timezone.now()
        old = incident.status
        incident.status = to
        milestone = MILESTONE_OF_STATUS.get(to)
        if milestone:
            setattr(incident, milestone, now)
        if to == Incident.Status.ACKNOWLEDGED and incident.owner_id is None and _user(actor):
            incident.owner = actor
        incident.save()
        statuses = {"from": label(labels[old]), "to": label(labels[to])}
        add_timeline_entry(
            incident=incident, kind=TimelineKind.MILESTONE, actor=actor, at=now,
            message=(message(N_("状态:%(from)s → %(to)s(%(reason)s)"), reason=reason_param(reason), **statuses)
                     if reason and str(reason).strip() else message(N_("状态:%(from)s → %(to)s"), **statuses)),
            data={"from": old, "to": to, "milestone": milestone},
        )
        _audit(actor, "incident_transition", incident, reason=reason or to, detail={"from": old, "to": to})
        events.push_incident_on_commit(incident.pk, parts=("header", "timeline"))
    return incident


CASE_FIELDS = ("cause", "handling", "outcome")


def _check_signed_off(incident, actor, reason, what):
    """A reviewed (signed-off) incident is read-only: only a manager's correction with a reason may change it.

    Returns True when this change is such a correction."""
    if incident.status != Incident.Status.REVIEWED:
        return False
    if not has_role(actor, MANAGER):
        raise PermissionDenied(_("事故已复盘签核,%(what)s只读;如需更正请联系经理。") % {"what": what})
    if not (reason or "").strip():
        raise IncidentRuleError(_("事故已复盘签核:经理更正%(what)s必须填写原因。") % {"what": what})
    return True


def update_case_record(*, incident, actor, cause, handling, outcome, reason=""):
    """Save the case text (cause, handling, outcome). Every change lands on the timeline with what it was;
    after sign-off only a manager's correction with a reason may change it."""
    with transaction.atomic():
        incident = _locked(incident)
        correction = _check_signed_off(incident, actor, reason, _("案例记录"))
        new = {"cause": cause.strip(), "handling": handling.strip(), "outcome": outcome.strip()}
        changes = {f: [getattr(incident, f), new[f]] for f in CASE_FIELDS if getattr(incident, f) != new[f]}
        if not changes:
            return incident
        for field, (_old, value) in changes.items():
            setattr(incident, field, value)
        incident.save(update_fields=list(changes))
        labels = items(*(label(Incident._meta.get_field(f).verbose_name) for f in changes))
        if correction:
            text = message(N_("更正案例记录(%(fields)s),原因:%(reason)s"), fields=labels, reason=reason.strip())
        else:
            text = message(N_("修改案例记录:%(fields)s"), fields=labels)
        add_timeline_entry(incident=incident, kind=TimelineKind.CORRECTION if correction else TimelineKind.UPDATE,
                           actor=actor, message=text, data={"case": changes, "reason": (reason or "").strip()})
        _audit(actor, "incident_correct_case" if correction else "incident_update_case", incident,
               reason=(reason or "").strip(), detail={"fields": list(changes)})
        events.push_incident_on_commit(incident.pk, parts=("header", "timeline"))
    return incident


def set_severity_and_owner(*, incident, actor, severity=None, owner=None, reason=""):
    """Change severity and/or owner; always on the timeline. After sign-off: a manager's correction only."""
    with transaction.atomic():
        incident = _locked(incident)
        changes = {}
        if severity is not None and int(severity) != incident.severity:
            changes["severity"] = [incident.severity, int(severity)]
        if owner is not None and owner.pk != incident.owner_id:
            changes["owner"] = [incident.owner.get_username() if incident.owner_id else None, owner.get_username()]
        if not changes:
            return incident
        correction = _check_signed_off(incident, actor, reason, _("级别和负责人"))
        if "severity" in changes:
            incident.severity = int(severity)
        if "owner" in changes:
            incident.owner = owner
        incident.save(update_fields=["severity", "owner"])
        parts = []
        if "severity" in changes:
            parts.append(message(N_("级别 SEV%(a)s → SEV%(b)s"), a=changes["severity"][0], b=changes["severity"][1]))
        if "owner" in changes:
            parts.append(message(N_("负责人 → %(who)s"), who=changes["owner"][1]))
        text = items(*parts)
        if correction:
            text = message(N_("更正:%(what)s,原因:%(reason)s"), what=text, reason=reason.strip())
        add_timeline_entry(incident=incident, kind=TimelineKind.CORRECTION if correction else TimelineKind.UPDATE,
                           actor=actor, message=text, data={**changes, "reason": (reason or "").strip()})
        _audit(actor, "incident_update", incident, reason=(reason or "").strip(), detail=changes)
        events.push_incident_on_commit(incident.pk, parts=("header", "timeline"))
        if "severity" in changes and incident.is_open and incident.pages_people and incident.page_round == 0:
            from . import paging

            incident_id = incident.pk
            transaction.on_commit(lambda: paging.page_on_commit(incident_id))  # raised to SEV1/SEV2: page now
    return incident


# --- Ownership: commander, duplicates ---------------------------------------------------------------

def take_command(*, incident, actor, via="page", link=None):
    """"我来处理": the actor becomes the incident's commander (and owner if it has none); a detected
    incident is acknowledged by them. From a page's link, the link is used up (single use).

    Returns the incident. Refuses closed incidents and used links with an IncidentRuleError.
    """
    from controlroom.roles import require_capability

    from .models import ClaimLink

    require_capability(actor, "take_incident")
    with transaction.atomic():
        incident = _locked(incident)
        if link is not None:
            used = ClaimLink.objects.filter(pk=link.pk, incident=incident, used_at__isnull=True).update(
                used_at=timezone.now(), used_by=actor)
            if not used:
                link.refresh_from_db()
                raise IncidentRuleError(_("该链接已被 %(who)s 使用过。") % {
                    "who": link.used_by.get_username() if link.used_by_id else "—"})
        if not incident.is_open:
            raise IncidentRuleError(_("事故已「%(s)s」,无需再接手。") % {"s": incident.get_status_display()})
        if incident.commander_id == actor.pk:
            return incident
        previous = incident.commander.get_username() if incident.commander_id else None
        incident.commander = actor
        incident.commander_since = timezone.now()
        fields = ["commander", "commander_since"]
        if incident.owner_id is None:
            incident.owner = actor
            fields.append("owner")
        incident.save(update_fields=fields)
        if previous:
            text = _("指挥:%(old)s → %(new)s") % {"old": previous, "new": actor.get_username()}
        else:
            text = _("%(who)s 接手指挥(我来处理)") % {"who": actor.get_username()}
        add_timeline_entry(incident=incident, kind=TimelineKind.OWNERSHIP, actor=actor, text=text,
                           data={"via": via, "previous": previous, "round": link.round if link else None})
        _audit(actor, "incident_take_command", incident, reason=via, detail={"previous": previous})
        if incident.status == Incident.Status.DETECTED:
            incident = transition(incident=incident, to=Incident.Status.ACKNOWLEDGED, actor=actor)
        events.push_incident_on_commit(incident.pk, parts=("header", "timeline"))
    return incident


def merge_duplicate(*, duplicate, into, actor, reason=""):
    """Mark `duplicate` as a duplicate of `into`: it is cancelled with a pointer to `into`, its timeline
    (alerts included) shows in `into`'s, and both timelines say so. Nothing is deleted."""
    from controlroom.roles import require_capability

    require_capability(actor, "merge_incidents")
    if duplicate.pk == into.pk:
        raise IncidentRuleError(_("不能把事故标记为自己的重复。"))
    with transaction.atomic():
        first, second = sorted([duplicate.pk, into.pk])
        locked = {i.pk: i for i in Incident.objects.select_for_update().select_related("room", "incident_type")
                  .filter(pk__in=[first, second]).order_by("pk")}
        duplicate, into = locked[duplicate.pk], locked[into.pk]
        while into.duplicate_of_id is not None:  # merging into a duplicate means into what it was merged into
            into = Incident.objects.select_for_update().select_related("room", "incident_type").get(pk=into.duplicate_of_id)
            if into.pk == duplicate.pk:
                raise IncidentRuleError(_("这两个事故已经互相关联。"))
        if not duplicate.is_open:
            raise IncidentRuleError(_("只能合并未结束的事故(#%(id)s 已「%(s)s」)。") % {
                "id": duplicate.pk, "s": duplicate.get_status_display()})
        if into.status == Incident.Status.CANCELLED:
            raise IncidentRuleError(_("不能并入已取消的事故。"))
        reason = (reason or "").strip()[:200]
        duplicate.duplicate_of = into
        duplicate.save(update_fields=["duplicate_of"])
        Incident.objects.filter(duplicate_of=duplicate).update(duplicate_of=into)  # keep one level
        transition(incident=duplicate, to=Incident.Status.CANCELLED, actor=actor,
                   reason=_("重复事故,并入 #%(id)s") % {"id": into.pk})
        add_timeline_entry(incident=duplicate, kind=TimelineKind.MERGE, actor=actor,
                           text=_("标记为 #%(id)s 的重复事故%(why)s") % {
                               "id": into.pk, "why": f"({reason})" if reason else ""},
                           data={"into": into.pk, "url": into.get_absolute_url(), "reason": reason})
        add_timeline_entry(incident=into, kind=TimelineKind.MERGE, actor=actor,
                           text=_("并入重复事故 #%(id)s %(title)s%(why)s") % {
                               "id": duplicate.pk, "title": duplicate.title, "why": f"({reason})" if reason else ""},
                           data={"duplicate": duplicate.pk, "url": duplicate.get_absolute_url(), "reason": reason})
        _audit(actor, "incident_merge_duplicate", duplicate, reason=reason, detail={"into": into.pk})
        events.push_incident_on_commit(into.pk, parts=("header", "timeline"))
    return into


def correct_milestone(*, incident, milestone, value, reason, actor):
    """Manager correction of a milestone time; audited with the old value and the reason."""
    from controlroom.roles import require_role

    require_role(actor, MANAGER, what="correct incident milestone")
    if milestone not in MILESTONES:
        raise IncidentRuleError(_("未知的里程碑:%(m)s") % {"m": milestone})
    if not (reason or "").strip():
        raise IncidentRuleError(_("修正时间必须填写原因。"))
    if value is None:
        raise IncidentRuleError(_("请填写修正后的时间。"))
    if timezone.is_naive(value):
        value = timezone.make_aware(value)
    if value > timezone.now() + timezone.timedelta(minutes=1):
        raise IncidentRuleError(_("修正后的时间不能晚于当前时间。"))
    with transaction.atomic():
        incident = _locked(incident)
        if milestone != "detected_at" and getattr(incident, milestone) is None:
            raise IncidentRuleError(_("该里程碑尚未发生,无法修正。"))
        old = getattr(incident, milestone)
        setattr(incident, milestone, value)
        # Milestones must stay in order or MTTx turn negative.
        present = [(m, getattr(incident, m)) for m in MILESTONES if getattr(incident, m) is not None]
        for (m1, t1), (m2, t2) in zip(present, present[1:]):
            if t1 > t2:
                labels = {m: str(Incident._meta.get_field(m).verbose_name) for m in MILESTONES}
                raise IncidentRuleError(_("修正后「%(a)s」晚于「%(b)s」,时间顺序不正确。") % {"a": labels[m1], "b": labels[m2]})
        incident.save(update_fields=[milestone])
        add_timeline_entry(
            incident=incident, kind=TimelineKind.CORRECTION, actor=actor,
            message=message(N_("修正%(label)s:%(old)s → %(new)s,原因:%(reason)s"),
                            label=label(Incident._meta.get_field(milestone).verbose_name),
                            old=timezone.localtime(old).strftime("%Y-%m-%d %H:%M:%S") if old else "—",
                            new=timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S"), reason=reason.strip()),
            data={"milestone": milestone, "old": old.isoformat() if old else None, "new": value.isoformat(),
                  "reason": reason.strip()},
        )
        _audit(actor, "incident_correct_milestone", incident, reason=reason.strip(),
               detail={"milestone": milestone, "old": old.isoformat() if old else None, "new": value.isoformat()})
        events.push_incident_on_commit(incident.pk, parts=("header", "timeline"))
    return incident


# --- Runbook checklist --------------------------------------------------------------------------

def can_complete_step(user, step):
    return step.role in roles_of(user) or has_role(user, MANAGER)


def _dispatch_step_action(step, incident, actor):
    """Run the step's one-click action through the real streams services (by contract name)."""
    room = incident.room
    reason = f"manual: runbook #{incident.pk} {step.title}"[:200]
    action = step.action

    if action in (StepAction.SWITCH_TO_BACKUP, StepAction.SWITCH_TO_PRIMARY, StepAction.SWITCH_TO_SLATE):
        source = action.partition(":")[2]
        return stream_services.switch_source(room=room, source=source, actor=actor, reason=reason)
    if action == StepAction.END_SLATE:
        return stream_services.end_slate(room=room, actor=actor, reason=reason)
    if action == StepAction.PIN_ANNOUNCEMENT:
        # "template:<name>" pins the wall's announcement template of that name ({eta} filled in).
        if step.action_param.startswith("template:"):
            from streams.models import AnnouncementTemplate

            name = step.action_param[len("template:"):].strip()
            template = AnnouncementTemplate.objects.filter(name=name, is_active=True).first()
            if template is None:
                raise IncidentRuleError(_("公告模板「%(name)s」不存在或已停用。") % {"name": name})
            return stream_services.pin_announcement(room=room, actor=actor, text="", template=template)
        return stream_services.pin_announcement(room=room, actor=actor, text=step.action_param, template=None)
    if action == StepAction.SEND_HOST_CUE:
        return stream_services.send_host_cue(room=room, actor=actor, text=step.action_param)
    if action == StepAction.REQUEST_KEYFRAME:
        return stream_services.request_keyframe(room=room, line_role=step.action_param or "primary", actor=actor)
    if action == StepAction.RESTART_LINE:
        return stream_services.restart_line(room=room, line_role=step.action_param or "primary", actor=actor)
    return None  # no action, or open_compensation (a link the view follows)


def complete_step(*, step, actor, run_action=True):
    """Tick a checklist step (running its one-click action first). Idempotent for double clicks.

    Returns (step, error_message). If the action fails the step stays open and the failure is
    on the timeline; the streams service has audited the failed attempt.
    """
    with transaction.atomic():
        step = IncidentStep.objects.select_for_update().select_related("incident__room").get(pk=step.pk)
        incident = step.incident
        if not can_complete_step(actor, step):
            from controlroom.roles import require_role

            require_role(actor, step.role, MANAGER, what=f"complete runbook step {step.pk}")
        if step.completed_at is not None:
            return step, None  # a second click: already done
        if incident.status in (Incident.Status.CANCELLED, Incident.Status.REVIEWED):
            raise IncidentRuleError(_("事故已结束,清单不能再修改。"))
        result = None
        if run_action and step.action:
            try:
                result = _dispatch_step_action(step, incident, actor)
            except DatabaseError:
                raise
            except IncidentRuleError:
                raise
            except PermissionDenied:
                return step, _("你的角色无权执行该动作,请由对应角色完成。")
            except Exception as exc:  # MediaCommandError, validation errors from the wall ...
                logger.warning("runbook action %s failed for incident %s: %s", step.action, incident.pk, exc)
                add_timeline_entry(incident=incident, kind=TimelineKind.STEP, actor=actor,
                                   message=message(N_("步骤动作失败:%(title)s — %(err)s"),
                                                   title=bilingual(step.title, step.title_en), err=str(exc)),
                                   data={"step": step.pk, "role": step.role, "action": step.action, "failed": True})
                events.push_incident_on_commit(incident.pk, parts=("checklist",))
                return step, _("动作执行失败:%(err)s") % {"err": exc}
        now = timezone.now()
        previous = (IncidentStep.objects.filter(incident=incident, role=step.role, completed_at__isnull=False,
                                                position__lt=step.position)
                    .aggregate(last=Max("completed_at"))["last"])
        since = step.started_at([previous])
        step.completed_at = now
        step.completed_by = _user(actor)
        step.duration_ms = max(0, int((now - since).total_seconds() * 1000))
        step.save(update_fields=["completed_at", "completed_by", "duration_ms"])
        rollup_step_duration(step, is_drill=incident.is_drill)
        data = {"step": step.pk, "role": step.role, "action": step.action, "duration_ms": step.duration_ms}
        if result is not None and getattr(result, "pk", None):
            data["action_result"] = {"type": result._meta.label, "pk": result.pk}
        add_timeline_entry(
            incident=incident, kind=TimelineKind.STEP, actor=actor, at=now,
            message=message(N_("完成步骤【%(role)s】%(pos)s. %(title)s(用时 %(sec)s 秒)"),
                            role=label(step.get_role_display()), pos=step.position,
                            title=bilingual(step.title, step.title_en), sec=round(step.duration_ms / 1000, 1)),
            data=data,
        )
        _audit(actor, "incident_complete_step", incident, reason=step.title, detail=data)
        events.push_incident_on_commit(incident.pk, parts=("checklist",))
    return step, None


def rollup_step_duration(step, *, is_drill):
    """Add a completed step to the daily rollup the "slowest steps" analytics read."""
    from django.db.models import F
    from django.db.models.functions import Greatest

    from .models import StepDurationDaily

    row, _created = StepDurationDaily.objects.get_or_create(
        day=timezone.localdate(step.completed_at), role=step.role, title=step.title, is_drill=is_drill)
    StepDurationDaily.objects.filter(pk=row.pk).update(
        n=F("n") + 1, total_ms=F("total_ms") + step.duration_ms, max_ms=Greatest(F("max_ms"), step.duration_ms))


def rebuild_step_rollup():
    """Recompute the whole daily step rollup from IncidentStep (after bulk loads or repairs)."""
    from django.db import connection

    from .models import StepDurationDaily

    with transaction.atomic():
        StepDurationDaily.objects.all().delete()
        if connection.vendor != "postgresql":
            for step in IncidentStep.objects.filter(completed_at__isnull=False, duration_ms__isnull=False) \
                    .select_related("incident"):
                rollup_step_duration(step, is_drill=step.incident.is_drill)
            return
        with connection.cursor() as cursor:
            cursor.execute("""
                INSERT INTO incidents_stepdurationdaily (day, role, title, is_drill, n, total_ms, max_ms)
                SELECT timezone('Asia/Shanghai', s.completed_at)::date, s.role, s.title, i.is_drill,
                       COUNT(*), SUM(s.duration_ms), MAX(s.duration_ms)
                FROM incidents_incidentstep s JOIN incidents_incident i ON i.id = s.incident_id
                WHERE s.completed_at IS NOT NULL AND s.duration_ms IS NOT NULL
                GROUP BY 1, 2, 3, 4
            """)


# --- Review -------------------------------------------------------------------------------------

def save_review(*, incident, actor, root_cause, went_well, to_improve, action_items=(), sign_off=False):
    """Write the post-incident review; signing off moves the incident to reviewed.

    action_items: iterable of dicts {text, owner (user or None), due_date (date or None)}.
    """
    from controlroom.roles import require_role

    require_role(actor, MANAGER, what="incident review")
    with transaction.atomic():
        incident = _locked(incident)
        if incident.status not in (Incident.Status.RESOLVED, Incident.Status.REVIEWED):
            raise IncidentRuleError(_("事故解决后才能复盘(当前状态:%(s)s)。") % {"s": incident.get_status_display()})
        if incident.status == Incident.Status.REVIEWED:
            raise IncidentRuleError(_("复盘已签核,不能再修改。"))
        review, _created = IncidentReview.objects.get_or_create(incident=incident)
        review.root_cause, review.went_well, review.to_improve = root_cause.strip(), went_well.strip(), to_improve.strip()
        review.updated_at = timezone.now()
        review.save()
        review.action_items.all().delete()
        ReviewActionItem.objects.bulk_create([
            ReviewActionItem(review=review, text=item["text"][:300], owner=item.get("owner"),
                             due_date=item.get("due_date"))
            for item in action_items if (item.get("text") or "").strip()
        ])
        _audit(actor, "incident_save_review", incident, detail={"items": review.action_items.count()})
        if sign_off:
            if not review.root_cause:
                raise IncidentRuleError(_("签核前请填写根本原因。"))
            items = list(review.action_items.all())
            if any(i.owner_id is None or i.due_date is None for i in items):
                raise IncidentRuleError(_("每个改进项都需要负责人和截止日期。"))
            review.signed_off_at = timezone.now()
            review.signed_off_by = actor
            review.save(update_fields=["signed_off_at", "signed_off_by"])
            transition(incident=incident, to=Incident.Status.REVIEWED, actor=actor, reason=N_("复盘签核"))
    return review


# --- Types and runbooks (managers) ----------------------------------------------------------------

def update_incident_type(*, incident_type, actor, name, default_severity, description="", name_en="",
                         description_en=""):
    from controlroom.roles import require_role

    require_role(actor, MANAGER, what="edit incident type")
    with transaction.atomic():
        incident_type = IncidentType.objects.select_for_update().get(pk=incident_type.pk)
        old = {"name": incident_type.name, "default_severity": incident_type.default_severity}
        incident_type.name, incident_type.default_severity = name.strip(), int(default_severity)
        incident_type.description = description.strip()
        incident_type.name_en, incident_type.description_en = name_en.strip(), description_en.strip()
        incident_type.save()
        stream_services.record_action(actor=actor, action="incident_type_edit", target=incident_type.slug,
                                      detail={"old": old, "new": {"name": incident_type.name,
                                                                  "default_severity": incident_type.default_severity}})
    return incident_type


def publish_runbook_version(*, incident_type, actor, steps, summary=""):
    """Editing a runbook creates a new version; incidents already open keep theirs.

    steps: iterable of dicts {role, title, instructions, action, action_param} in order.
    """
    from controlroom.roles import require_role

    require_role(actor, MANAGER, what="edit runbook")
    steps = [s for s in steps if (s.get("title") or "").strip()]
    if not steps:
        raise IncidentRuleError(_("预案至少需要一个步骤。"))
    with transaction.atomic():
        incident_type = IncidentType.objects.select_for_update().get(pk=incident_type.pk)
        latest = incident_type.runbooks.aggregate(v=Max("version"))["v"] or 0
        runbook = Runbook.objects.create(incident_type=incident_type, version=latest + 1, summary=summary[:300],
                                         created_by=actor)
        positions = {}
        rows = []
        for s in steps:
            positions[s["role"]] = positions.get(s["role"], 0) + 1
            rows.append(RunbookStep(runbook=runbook, role=s["role"], position=positions[s["role"]],
                                    title=s["title"].strip()[:200], instructions=(s.get("instructions") or "").strip(),
                                    title_en=(s.get("title_en") or "").strip()[:200],
                                    action=s.get("action") or "", action_param=(s.get("action_param") or "")[:300]))
        RunbookStep.objects.bulk_create(rows)
        stream_services.record_action(actor=actor, action="runbook_publish", target=incident_type.slug,
                                      detail={"version": runbook.version, "steps": len(rows)})
    return runbook


# --- Line down longer than the threshold ----------------------------------------------------------

def line_down_threshold_s():
    from django.conf import settings

    return getattr(settings, "INCIDENTS_LINE_DOWN_THRESHOLD_S", 30)


def check_lines_down(*, now=None, threshold_s=None):
    """Open a stream-interruption incident for lines down longer than the threshold.

    Run periodically (Celery task) and after each line_down alert's threshold delay. Returns
    the incidents opened or attached to.
    """
    from streams.models import Alert, ControlAction

    now = now or timezone.now()
    threshold_s = line_down_threshold_s() if threshold_s is None else threshold_s
    cutoff = now - timezone.timedelta(seconds=threshold_s)
    touched = []
    candidates = Alert.objects.filter(kind=Alert.Kind.LINE_DOWN, raised_at__lte=cutoff,
                                      raised_at__gte=now - timezone.timedelta(hours=1)).select_related("room")
    for alert in candidates:
        # an open alert counts repeats in place: compare with when each was last seen, not first raised
        recovered = (Alert.objects.filter(room=alert.room, line_role=alert.line_role, kind=Alert.Kind.LINE_RECOVERED,
                                          last_seen_at__gt=alert.last_seen_at).exists()
                     or ControlAction.objects.filter(room=alert.room, action="publisher_connected",
                                                     target=alert.line_role, created_at__gt=alert.last_seen_at).exists())
        if recovered:
            continue
        if IncidentTimelineEntry.objects.filter(kind=TimelineKind.DETECTION, data__alert_id=alert.pk).exists():
            continue  # this alert already opened (or attached to) an incident
        with transaction.atomic():
            incident = open_incident(room=alert.room, incident_type="stream-interruption", actor=None,
                                     source="line_down",
                                     title_msg=message(N_("%(room)s %(line)s中断超过 %(s)s 秒"), room=alert.room.name,
                                                       line=line_label(alert.line_role), s=threshold_s))
            add_timeline_entry(incident=incident, kind=TimelineKind.DETECTION,
                               message=message(N_("线路中断超时:%(msg)s"),
                                               msg=alert_param(alert)),
                               data={"alert_id": alert.pk, "line_role": alert.line_role}, at=now,
                               actor_label="auto")
        touched.append(incident)
    return touched


# --- Parameters of timeline messages -------------------------------------------------------------

# Reasons the system gives (passed untranslated, shown in the reader's language).
SYSTEM_REASONS = {N_("复盘签核"), N_("告警转为事故")}


def line_label(role):
    """A line or programme source ("primary", "backup", "slate") by its label."""
    labels = dict(LiveRoom.Source.choices)
    return label(labels[role]) if role in labels else (role or "—")


def alert_param(alert):
    from .messages import alert as alert_message

    return alert_message(alert.kind, alert.detail, alert.message)


def reason_param(reason):
    """A switch's reason for people: "auto:<trigger> ..." as the trigger's label, "manual: " dropped."""
    from streams.models import FAILOVER_TRIGGER_LABELS

    reason = str(reason or "").strip()
    if reason.startswith("auto:"):
        trigger = (reason[len("auto:"):].split() or [""])[0]
        known = FAILOVER_TRIGGER_LABELS.get(trigger)
        return message(N_("自动:%(trigger)s"), trigger=label(known) if known is not None else trigger)
    if reason.startswith("manual:"):
        return reason[len("manual:"):].strip()
    return label(reason) if reason in SYSTEM_REASONS else reason
