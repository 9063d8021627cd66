"""What incidents contributes to the wall through streams.hooks (streams never imports us)."""

from django.utils.translation import gettext as _


def open_incident_from_tile(*, room, actor):
    """The wall's 'declare incident' button (one click, no form): type 其他; a typed case is declared
    from /incidents/new."""
    from .services import open_incident

    return open_incident(room=room, incident_type="other", actor=actor, source="manual")


def tile_badges(rooms):
    from .models import OPEN_STATUSES, Incident
    from .paging import ensure_local_ticker

    ensure_local_ticker()  # embedded default: escalations run once someone has the wall open (idempotent)
    slugs = [getattr(r, "slug", r) for r in rooms]
    badges = {}
    for incident in (Incident.objects.filter(room__slug__in=slugs, status__in=OPEN_STATUSES)
                     .select_related("room", "incident_type").order_by("severity", "detected_at")):
        badges.setdefault(incident.room.slug, {
            "label": f"SEV{incident.severity} {incident.incident_type.display_name}" + (f" {_('演练')}" if incident.is_drill else ""),
            "url": f"/incidents/{incident.pk}/", "severity": incident.severity,
        })
    return badges

def room_panel_url(room, user):
    """The room detail page embeds our per-role checklist panel (it stays live on its own websocket)."""
    from django.urls import reverse

    from controlroom.roles import ON_DUTY, has_role

    return reverse("incidents:room_panel", args=[room.slug]) if has_role(user, *ON_DUTY) else None


def register_wall_hooks():
    try:
        from streams import hooks
    except ImportError:
        return
    hooks.register_open_incident(open_incident_from_tile)
    hooks.register_tile_badges(tile_badges)
    hooks.register_room_panel(room_panel_url)
