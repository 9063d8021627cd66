"""Reads for incident pages, the case library and the wall panel."""

from datetime import datetime, time

from django.db.models import Q
from django.db.models.functions import ExtractHour
from django.utils import timezone

from controlroom.roles import ROLE_LABELS

from .models import OPEN_STATUSES, Incident, IncidentStep, StepRole

ROLE_ORDER = [r for r, _ in StepRole.choices]


def incident_for_page(incident_id):
    return (Incident.objects.select_related("room", "incident_type", "owner", "runbook", "created_by", "commander")
            .filter(pk=incident_id).first())


def timeline(incident, hide_noise=False):
    """Newest first, with the entries of incidents merged into this one as duplicates.

    hide_noise drops system chatter (alerts, automatic switches and controls, repeated detections)."""
    from .models import IncidentTimelineEntry

    entries = (IncidentTimelineEntry.objects.filter(Q(incident=incident) | Q(incident__duplicate_of=incident))
               .select_related("actor").order_by("-at", "-id"))
    # One incident's timeline is small; the rule lives on the model (is_noise), not in a second SQL copy.
    return [e for e in entries if not e.is_noise] if hide_noise else list(entries)


def checklists(incident, roles=None):
    """Per-role checklists: [{role, label, steps, done, total, next}] in role order."""
    steps = list(IncidentStep.objects.filter(incident=incident).select_related("completed_by")
                 .order_by("role", "position"))
    out = []
    for role in ROLE_ORDER:
        if roles is not None and role not in roles:
            continue
        mine = [s for s in steps if s.role == role]
        if not mine:
            continue
        pending = [s for s in mine if s.completed_at is None]
        out.append({"role": role, "label": ROLE_LABELS.get(role, role), "steps": mine,
                    "done": len(mine) - len(pending), "total": len(mine),
                    "next": pending[0] if pending else None,
                    "percent": round(100 * (len(mine) - len(pending)) / len(mine))})
    return out


def open_incidents_for_room(room):
    return list(Incident.objects.filter(room=room, status__in=OPEN_STATUSES)
                .select_related("incident_type").order_by("detected_at"))


def room_panel(room, role):
    """Context for the wall's per-room panel: open incidents and this role's checklist."""
    items = []
    for incident in open_incidents_for_room(room):
        items.append({"incident": incident, "checklists": checklists(incident, roles=[role])})
    return {"room": room, "role": role, "items": items}


# --- Case library filters -------------------------------------------------------------------

def shift_of_hour(hour, night_start=22, night_end=8):
    if night_start > night_end:
        return "night" if (hour >= night_start or hour < night_end) else "day"
    return "night" if night_start <= hour < night_end else "day"


def filter_incidents(params, night_start=22, night_end=8):
    """The case library list filtered by GET params (also used by the CSV export).

    params: room, merchant, type, severity, status, date_from, date_to (YYYY-MM-DD, Asia/Shanghai),
    shift (day|night), q (free text over title/cause/handling/outcome; icontains works for Chinese),
    drill (1 = only drills, all = both; default production only).
    """
    qs = Incident.objects.select_related("room", "incident_type", "owner")
    drill = params.get("drill") or ""
    if drill == "1":
        qs = qs.filter(is_drill=True)
    elif drill != "all":
        qs = qs.filter(is_drill=False)
    if params.get("room"):
        qs = qs.filter(room__slug=params["room"])
    if params.get("merchant"):
        qs = qs.filter(room__merchant=params["merchant"])
    if params.get("type"):
        qs = qs.filter(incident_type__slug=params["type"])
    if params.get("severity"):
        try:
            qs = qs.filter(severity=int(params["severity"]))
        except ValueError:
            pass
    if params.get("status"):
        qs = qs.filter(status=params["status"])
    tz = timezone.get_default_timezone()
    for key, lookup, at in (("date_from", "detected_at__gte", time.min), ("date_to", "detected_at__lte", time.max)):
        value = params.get(key)
        if value:
            try:
                day = datetime.strptime(value, "%Y-%m-%d").date()
            except ValueError:
                continue
            qs = qs.filter(**{lookup: timezone.make_aware(datetime.combine(day, at), tz)})
    shift = params.get("shift")
    if shift in ("day", "night"):
        qs = qs.annotate(local_hour=ExtractHour("detected_at", tzinfo=tz))
        if night_start > night_end:
            night = Q(local_hour__gte=night_start) | Q(local_hour__lt=night_end)
        else:
            night = Q(local_hour__gte=night_start, local_hour__lt=night_end)
        qs = qs.filter(night) if shift == "night" else qs.exclude(night)
    text = (params.get("q") or "").strip()
    if text:
        for word in text.split()[:5]:
            qs = qs.filter(Q(title__icontains=word) | Q(cause__icontains=word) | Q(handling__icontains=word)
                           | Q(outcome__icontains=word))
    return qs.order_by("-detected_at", "-id")


def duration_s(start, end):
    if start is None or end is None:
        return None
    return round((end - start).total_seconds(), 1)


def retention_holds():
    """Windows pruning must keep (streams.hooks.register_retention_holds): each incident not yet reviewed
    (a cancelled one has no case to reconstruct), from detection to resolution (or still going)."""
    return (Incident.objects.exclude(status__in=[Incident.Status.REVIEWED, Incident.Status.CANCELLED])
            .values_list("room_id", "detected_at", "resolved_at"))
