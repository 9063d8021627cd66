"""The alert sidebar every control-room page carries (read lazily: only a page that renders it queries)."""

from controlroom.roles import can


def alert_sidebar(request):
    user = getattr(request, "user", None)
    if user is None or not can(user, "acknowledge_alert"):
        return {}
    from . import selectors

    # Callables: the template calls them when (and if) it renders the sidebar.
    return {"alert_triage": selectors.alert_triage, "sidebar_alerts": selectors.recent_alerts}
