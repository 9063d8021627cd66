"""Live pushes for incident pages and the wall panel.

Each fragment is rendered ONCE after commit and the same string is sent to a group:
  incident-<id>            header, timeline, checklist progress (everyone on the page)
  incident-<id>-<role>     that role's checklist
  incidents-room-<slug>-<role>  the wall panel of a room for that role
The htmx ws extension swaps each top-level element by its id (out-of-band).
"""

import threading

from django.db import transaction
from django.template.loader import render_to_string

from streams.events import send_to_group

ROLES = ("ops", "floor_control", "tech_support")

_pending = threading.local()


def incident_group(incident_id, role=None):
    return f"incident-{incident_id}" + (f"-{role}" if role else "")


def room_panel_group(slug, role):
    return f"incidents-room-{slug}-{role}"


def push_incident_on_commit(incident_id, parts=("header", "timeline", "checklist"), new=False):
    """Coalesce pushes per incident within a transaction; render and send after commit."""
    pending = getattr(_pending, "parts", None)
    if pending is None:
        pending = _pending.parts = {}
    pending.setdefault(incident_id, set()).update(parts)
    if new:
        pending[incident_id].update(("header", "timeline", "checklist"))
    if new or "header" in parts:
        pending[incident_id].add("wall")
    transaction.on_commit(lambda: _flush(incident_id))


def _flush(incident_id):
    parts = getattr(_pending, "parts", {}).pop(incident_id, None)
    if not parts:
        return  # an earlier callback of the same transaction already sent everything
    try:
        push_incident_now(incident_id, parts)
    except Exception:  # a push must never break the action that caused it
        import logging

        logging.getLogger(__name__).exception("incident push failed for %s", incident_id)


def push_incident_now(incident_id, parts):
    from . import selectors

    incident = selectors.incident_for_page(incident_id)
    if incident is None:
        return
    template = "incidents/detail.html"
    if "header" in parts:
        html = render_to_string(f"{template}#header", {"incident": incident})
        send_to_group(incident_group(incident_id), {"type": "incident.fragment", "html": html})
    if "timeline" in parts:
        html = render_to_string(f"{template}#timeline", {"incident": incident,
                                                          "timeline": selectors.timeline(incident)})
        send_to_group(incident_group(incident_id), {"type": "incident.fragment", "html": html})
    if "checklist" in parts or "header" in parts:
        checklists = selectors.checklists(incident)
        html = render_to_string(f"{template}#progress", {"incident": incident, "checklists": checklists})
        send_to_group(incident_group(incident_id), {"type": "incident.fragment", "html": html})
        for checklist in checklists:
            html = render_to_string(f"{template}#checklist", {"incident": incident, "checklist": checklist,
                                                               "can_act": True})
            send_to_group(incident_group(incident_id, checklist["role"]), {"type": "incident.fragment", "html": html})
    if "wall" in parts:  # tile badge (severity/status) changed
        try:
            from streams.wall import refresh_rooms
        except ImportError:
            pass
        else:
            refresh_rooms([incident.room.slug])
    # The wall panel of the room: one render per role.
    for role in ROLES:
        html = render_to_string("incidents/room_panel.html#panel", selectors.room_panel(incident.room, role))
        send_to_group(room_panel_group(incident.room.slug, role), {"type": "incident.fragment", "html": html})
