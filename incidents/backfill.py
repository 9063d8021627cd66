"""Give timeline entries and titles written before messages existed their message (migration 0010).

Rebuilt from what each entry kept in `data` (and the rows it points to); entries it cannot rebuild keep
their stored Chinese text. Works on the migration's historical models.
"""

from types import SimpleNamespace

from django.utils.translation import gettext_noop as N_

from .messages import bilingual, label, message
from .seed import backfill_english


def run(apps, schema_editor):
    IncidentType = apps.get_model("incidents", "IncidentType")
    RunbookStep = apps.get_model("incidents", "RunbookStep")
    IncidentStep = apps.get_model("incidents", "IncidentStep")
    backfill_english(IncidentType, RunbookStep, IncidentStep)
    backfill_titles(apps)
    backfill_timeline(apps)


def backfill_titles(apps):
    Incident = apps.get_model("incidents", "Incident")
    for incident in Incident.objects.filter(title_msg={}).select_related("room", "incident_type").iterator():
        itype = incident.incident_type
        if incident.title == f"{incident.room.name} · {itype.name}":
            incident.title_msg = message("%(room)s · %(type)s", room=incident.room.name,
                                         type=bilingual(itype.name, itype.name_en))
            incident.save(update_fields=["title_msg"])


def _rebuild(entry, apps):
    from streams.models import Alert, ControlAction

    from . import receivers, services
    from .models import Incident, Source, StepRole

    data = entry.data or {}
    incident = entry.incident
    if entry.kind == "milestone" and data.get("from") in Incident.Status.values and data.get("to") in Incident.Status.values:
        statuses = dict(Incident.Status.choices)
        params = {"from": label(statuses[data["from"]]), "to": label(statuses[data["to"]])}
        text = entry.text
        if text.endswith(")") and "(" in text:
            return message(N_("状态:%(from)s → %(to)s(%(reason)s)"),
                           reason=services.reason_param(text[text.rindex("(") + 1:-1]), **params)
        return message(N_("状态:%(from)s → %(to)s"), **params)
    if entry.kind == "step" and data.get("step") and not data.get("failed") and data.get("duration_ms") is not None:
        step = apps.get_model("incidents", "IncidentStep").objects.filter(pk=data["step"]).first()
        if step is None:
            return None
        return message(N_("完成步骤【%(role)s】%(pos)s. %(title)s(用时 %(sec)s 秒)"),
                       role=label(dict(StepRole.choices).get(step.role, step.role)), pos=step.position,
                       title=bilingual(step.title, step.title_en), sec=round(data["duration_ms"] / 1000, 1))
    if entry.kind == "detection" and "source" in data and not data.get("repeat") and "alert_id" not in data:
        source = dict(Source.choices).get(data["source"])
        return message(N_("%(drill)s发现事故:%(title)s(来源:%(source)s)"),
                       drill=label(N_("【演练】")) if incident.is_drill else "",
                       title=incident.title_msg or incident.title, source=label(source) if source else data["source"])
    if entry.kind == "alert" and data.get("alert_id"):
        alert = apps.get_model("streams", "Alert").objects.filter(pk=data["alert_id"]).first()
        if alert is None:
            return None
        kind = label(dict(Alert.Kind.choices).get(alert.kind, alert.kind))
        body = {"alert": [alert.kind, alert.detail or {}, alert.message]}
        if entry.text.endswith("(确认为事故)"):
            return message(N_("告警[%(kind)s]%(msg)s(确认为事故)"), kind=kind, msg=body)
        return receivers.concat(message(N_("告警[%(kind)s]%(msg)s"), kind=kind, msg=body),
                                message(N_("(共 %(n)s 次)"), n=alert.count) if alert.count > 1 else "")
    if data.get("control_action"):
        row = apps.get_model("streams", "ControlAction").objects.filter(pk=data["control_action"]).first()
        if row is None:
            return None
        username = row.actor.username if row.actor_id else ""
        outcomes = dict(ControlAction.Outcome.choices)
        adapter = SimpleNamespace(
            action=row.action, target=row.target, reason=row.reason, outcome=row.outcome, detail=row.detail,
            latency_ms=row.latency_ms, actor_id=row.actor_id, actor_label=row.actor_label,
            actor=SimpleNamespace(get_username=lambda: username),
            get_outcome_display=lambda: outcomes.get(row.outcome, row.outcome))
        return receivers.describe_action(adapter)
    return None


def backfill_timeline(apps):
    from .messages import render_stored

    Entry = apps.get_model("incidents", "IncidentTimelineEntry")
    for entry in Entry.objects.select_related("incident").iterator():
        if "msg" in (entry.data or {}):
            continue
        msg = _rebuild(entry, apps)
        if msg is None:
            continue
        # Entries are append-only for people; giving them their message is a one-time repair.
        Entry.objects.filter(pk=entry.pk).update(data={**entry.data, "msg": msg}, text=render_stored(msg)[:500])
