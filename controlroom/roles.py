"""Roles are Django groups; this is the one access helper views and consumers use."""

import logging

from django.core.exceptions import PermissionDenied
from django.utils.translation import gettext_lazy as _

logger = logging.getLogger("controlroom.access")

OPS = "ops"
FLOOR_CONTROL = "floor_control"
TECH_SUPPORT = "tech_support"
MANAGER = "manager"

ROLE_LABELS = {
    OPS: _("后台运营"),
    FLOOR_CONTROL: _("场控/助理"),
    TECH_SUPPORT: _("技术支持"),
    MANAGER: _("管理"),
}
ALL_ROLES = tuple(ROLE_LABELS)
ON_DUTY = ALL_ROLES  # anyone on duty may open an incident, see the wall

# Who may do what on a live room: the one table that the wall's buttons, its websocket actions, the
# services behind them and the runbooks' one-click steps all read, so a button is shown exactly where
# its service would accept the click.
CAPABILITIES = {
    "switch_source": (OPS, TECH_SUPPORT),  # program to primary, backup or slate
    "end_slate": (OPS, TECH_SUPPORT),
    "request_keyframe": (TECH_SUPPORT,),  # diagnosing and restarting lines is tech support's
    "restart_line": (TECH_SUPPORT,),
    "inject_demo_fault": (OPS, TECH_SUPPORT),
    "pin_announcement": (FLOOR_CONTROL,),
    "unpin_announcement": (FLOOR_CONTROL,),
    "send_host_cue": (FLOOR_CONTROL, OPS),
    "post_chat_reply": (FLOOR_CONTROL,),
    "open_incident": ON_DUTY,
    "acknowledge_alert": ON_DUTY,
    "acknowledge_room_alerts": ON_DUTY,
    "snooze_room_alerts": ON_DUTY,  # silence a room's alerts for a while (still recorded, audited)
    "arrange_wall": ON_DUTY,  # one's own wall: density and room order (a preference, not a room action)
    "edit_push_destinations": (OPS, TECH_SUPPORT),  # where the program goes: platform URLs and stream keys
    # Incidents: everyone on duty sees open ones, takes command ("我来处理") and declares duplicates.
    "view_incidents": ON_DUTY,
    "take_incident": ON_DUTY,
    "merge_incidents": ON_DUTY,
    "view_duty_roster": ON_DUTY,
    "edit_duty_roster": (MANAGER,),  # who is on duty, per role and shift
    "edit_paging_robots": (MANAGER,),  # group-robot webhooks and their secrets; delivery log
    "edit_ingest_lines": (OPS, TECH_SUPPORT),  # a line's protocol (WHIP or RTMP) and its publish key
}


def roles_of(user):
    """The set of role names a user holds (cached on the user object)."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return frozenset()
    cached = getattr(user, "_controlroom_roles", None)
    if cached is None:
        if user.is_superuser:
            cached = frozenset(ALL_ROLES)
        else:
            cached = frozenset(user.groups.filter(name__in=ALL_ROLES).values_list("name", flat=True))
        user._controlroom_roles = cached
    return cached


def has_role(user, *roles):
    return bool(roles_of(user) & set(roles))


def allows(user, *roles, what=""):
    """require_role for places that cannot raise (websocket handshakes close with 4403): logs denials."""
    try:
        require_role(user, *roles, what=what)
    except PermissionDenied:
        return False
    return True


def can(user, capability):
    return has_role(user, *CAPABILITIES[capability])


def require_capability(user, capability, what=""):
    require_role(user, *CAPABILITIES[capability], what=what or capability)


def require_role(user, *roles, what=""):
    """Raise PermissionDenied (logged) unless the user holds one of `roles`."""
    if has_role(user, *roles):
        return
    logger.warning(
        "denied: user=%s roles=%s needs=%s action=%s",
        getattr(user, "username", None) or "anonymous",
        sorted(roles_of(user)),
        list(roles),
        what,
    )
    raise PermissionDenied(f"requires role {' or '.join(roles)}")


# Role -> permissions ("app_label.codename"). Apps add theirs here; `sync_role_groups` runs after
# every migrate (and after test flushes), so groups always match this table.
ROLE_PERMISSIONS = {
    OPS: {"streams.switch_program", "streams.post_announcement", "streams.declare_incident", "streams.view_liveroom",
          "streams.change_pushdestination"},
    FLOOR_CONTROL: {"streams.post_announcement", "streams.declare_incident", "streams.view_liveroom"},
    TECH_SUPPORT: {"streams.switch_program", "streams.control_lines", "streams.declare_incident",
                   "streams.view_liveroom", "streams.change_pushdestination"},
    MANAGER: {"streams.view_audit", "streams.declare_incident", "streams.view_liveroom",
              "streams.view_controlaction"},
}


def sync_role_groups(**kwargs):
    """Create the role groups and grant the permissions in ROLE_PERMISSIONS (idempotent)."""
    from django.contrib.auth.models import Group, Permission

    for role, perms in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        wanted = []
        for perm in perms:
            app_label, codename = perm.split(".", 1)
            wanted += Permission.objects.filter(content_type__app_label=app_label, codename=codename)
        group.permissions.add(*wanted)
