"""Extension points other apps fill in, so streams never imports them (dependencies point one way).

incidents registers, e.g. in its AppConfig.ready():

    from streams import hooks
    hooks.register_open_incident(lambda *, room, actor: incidents.services.open_incident(...))
    hooks.register_tile_badges(lambda rooms: {room.slug: {"label": "P2", "url": "/incidents/7/"}, ...})

and calls `streams.wall.refresh_rooms([slug])` (after commit) when a badge changes, so the wall re-renders.
"""

import logging

logger = logging.getLogger(__name__)

_open_incident_handler = None
_tile_badge_providers = []


def register_open_incident(fn):
    """fn(*, room, actor) -> object with .pk (and optionally get_absolute_url()). The last one wins."""
    global _open_incident_handler
    _open_incident_handler = fn
    return fn


def open_incident_handler():
    return _open_incident_handler


def register_tile_badges(fn):
    """fn(rooms) -> {slug: {"label": str, "url": str, "severity": int}} for rooms with something open."""
    if fn not in _tile_badge_providers:
        _tile_badge_providers.append(fn)
    return fn


def tile_badges(rooms):
    """Badges per room slug from every provider; a failing provider costs its badges, not the wall."""
    badges = {}
    for provider in list(_tile_badge_providers):
        try:
            for slug, badge in (provider(rooms) or {}).items():
                badges.setdefault(slug, []).append(badge)
        except Exception:  # noqa: BLE001 - another app's bug must not blank the wall
            logger.exception("tile badge provider %r failed", provider)
    return badges


# --- Panels other apps place on our pages -------------------------------------------------------
# A provider returns the URL of a fragment (or None: nothing for this room/user); the page loads it
# with htmx, so the fragment stays the other app's view, template and access check.

_viewer_panel_providers = []
_room_panel_providers = []
_wall_panel_providers = []


def _register(providers, fn):
    if fn not in providers:
        providers.append(fn)
    return fn


def _panel_urls(providers, *args):
    """URLs from every provider, in registration order; a failing provider costs its panel, not the page."""
    urls = []
    for provider in list(providers):
        try:
            url = provider(*args)
        except Exception:  # noqa: BLE001 - another app's bug must not break our page
            logger.exception("panel provider %r failed", provider)
            continue
        if url:
            urls.append(str(url))
    return urls


def register_viewer_panel(fn):
    """fn(room, request) -> URL or None: a fragment on the viewer page /live/<slug> (refreshed every 10 s
    and after the viewer's own button presses inside it)."""
    return _register(_viewer_panel_providers, fn)


def viewer_panels(room, request):
    return _panel_urls(_viewer_panel_providers, room, request)


def register_room_panel(fn):
    """fn(room, user) -> URL or None: a fragment on the wall's room detail page (loaded once; it keeps
    itself live, e.g. with its own websocket)."""
    return _register(_room_panel_providers, fn)


def room_panels(room, user):
    return _panel_urls(_room_panel_providers, room, user)


def register_wall_panel(fn):
    """fn(user) -> URL or None: a fragment above the wall's tiles (loaded once; keeps itself live)."""
    return _register(_wall_panel_providers, fn)


def wall_panels(user):
    return _panel_urls(_wall_panel_providers, user)


# --- Data lifecycle: what pruning must keep -----------------------------------------------------

_retention_hold_providers = []


def register_retention_holds(fn):
    """fn() -> iterable of (room_id, start, end or None for "still going"): windows of a room whose presence,
    chat, health and cues an open case (an incident not yet reviewed, a campaign not yet closed) still needs.
    Pruning (streams/retention.py) keeps every row of that room overlapping the window."""
    return _register(_retention_hold_providers, fn)


def retention_holds():
    """Every provider's windows. A failing provider stops pruning (raises): keeping too much is safe,
    deleting what a case needs is not."""
    holds = []
    for provider in list(_retention_hold_providers):
        holds.extend(provider())
    return holds
