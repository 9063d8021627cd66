"""Live pushes for incident pages and the wall panel.

Each fragment is rendered ONCE after commit and the same string is sent to a group:
  incident-<id>            header, timeline, checklist progress (everyone on the page)
  incident-<id>-<role>     that role's checklist
  incidents-room-<slug>-<role>  the wall panel of a room for that role
The htmx ws extension swaps each top-level element by its id (out-of-band).

Fragments are rendered in every language of the site (each socket forwards the one of its reader), on the
process's deferred thread (controlroom.deferred) after commit: a click's request only waits for its write.
"""

import logging
import threading

from django.conf import settings
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import translation

from streams.events import send_to_group

ROLES = ("ops", "floor_control", "tech_support")

_pending = threading.local()
logger = logging.getLogger(__name__)



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
    from controlroom import deferred

    deferred.submit(_push_logged, incident_id, frozenset(parts))


def _push_logged(incident_id, parts):
    try:
        push_incident_now(incident_id, parts)
    except Exception:  # a push must never break the action that caused it
        logger.exception("incident push failed for %s", incident_id)


def _fragment(template, context):
    """The fragment in every language of the site: {"html": default language, "by_lang": {code: html}}."""
    by_lang = {}
    for code, _name in settings.LANGUAGES:
        with translation.override(code):
            by_lang[code] = render_to_string(template, context)
    return {"type": "incident.fragment", "html": by_lang[settings.LANGUAGE_CODE], "by_lang": by_lang}


def push_incident_now(incident_id, parts):
    from . import selectors

    incident = selectors.incident_for_page(incident_id)
    if incident is None:
        return
    template = "incidents/detail.html"
    if "header" in parts:
        send_to_group(incident_group(incident_id), _fragment(f"{template}#header", {"incident": incident}))
    if "timeline" in parts:
        send_to_group(incident_group(incident_id), _fragment(f"{template}#timeline", {
            "incident": incident, "timeline": selectors.timeline(incident)}))
    if "checklist" in parts or "header" in parts:
        checklists = selectors.checklists(incident)
        send_to_group(incident_group(incident_id), _fragment(f"{template}#progress", {
            "incident": incident, "checklists": checklists}))
        for checklist in checklists:
            send_to_group(incident_group(incident_id, checklist["role"]), _fragment(f"{template}#checklist", {
                "incident": incident, "checklist": checklist, "can_act": True}))
    if "wall" in parts:  # tile badge (severity/status) changed
        try:
            from streams.wall import refresh_rooms
        except ImportError:
            pass
        else:
            refresh_rooms([incident.room.slug])
    # The wall panel of the room: one render per role.
    for role in ROLES:
        send_to_group(room_panel_group(incident.room.slug, role),
                      _fragment("incidents/room_panel.html#panel", selectors.room_panel(incident.room, role)))
