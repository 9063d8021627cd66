import uuid

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core import signing
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from controlroom.csv_export import csv_response
from controlroom.roles import FLOOR_CONTROL, MANAGER, ON_DUTY, can, has_role, require_capability, require_role

from . import hooks, services, snapshots, viewer_identity, viewer_notices
from .selectors import recent_alerts
from .actions import ACTIONS
from .demo import DEMO_ROOMS
from .forms import AnnouncementTemplateForm, AuditFilterForm, CannedReplyForm
from .models import (Alert, AlertSnooze, Announcement, AnnouncementTemplate, CannedReply, ChatMessage, ControlAction,
                     ControlActionArchive, HostCue,
                     LiveRoom, OperatorPreference, Viewer)
from .viewer_consumers import DEVICE_COOKIE
from .viewer_services import announcement_data, current_announcement
from .wall import load_room_meta, tile_context

DEMO_ROOM_SLUGS = {slug for slug, *_rest in DEMO_ROOMS}

PREVIEW_LIVE_MAX = 9  # more rooms than this: low-rate rotating snapshots instead of live previews


def allowed_actions(user):
    return {name for name in ACTIONS if can(user, name)}


def wall_preference(user):
    """The operator's wall preference (unsaved defaults if they never chose)."""
    return OperatorPreference.objects.filter(user=user).first() or OperatorPreference(user=user)


def wall_context(request, slugs=None):
    meta = load_room_meta(slugs)
    pref = wall_preference(request.user)
    # A fixed order (by name, or the operator's own): a room's state never moves its tile.
    tiles = [tile_context(m, None, [], 0, stale=False) for m in pref.ordered(meta.values())]
    return {
        "tiles": tiles, "pref": pref, "dense": pref.dense_for(len(tiles)),
        "allowed": allowed_actions(request.user),
        "templates": AnnouncementTemplate.objects.filter(is_active=True),
        "canned_replies": CannedReply.objects.filter(is_active=True),
        "live_previews": len(tiles) <= PREVIEW_LIVE_MAX,
    }


def _muted(user):
    return wall_preference(user).alerts_muted


@login_required
def home(request):
    """The control-room wall: one tile per live room, kept live over /ws/wall/."""
    require_role(request.user, *ON_DUTY, what="view wall")
    ctx = wall_context(request)
    merchants = sorted({t["room"]["merchant"] for t in ctx["tiles"]})
    return render(request, "streams/wall.html", {**ctx, "merchants": merchants, "alerts": recent_alerts(),
                                                 "alerts_muted": _muted(request.user),
                                                 "wall_panels": hooks.wall_panels(request.user)})


@login_required
@require_GET
def wall_grid(request):
    """The grid alone: fetched by the page when the set of live rooms changed."""
    require_role(request.user, *ON_DUTY, what="view wall")
    return render(request, "streams/wall.html#grid", wall_context(request))


@login_required
@require_POST
def toggle_mute(request):
    require_role(request.user, *ON_DUTY, what="mute alerts")
    pref, _created = OperatorPreference.objects.get_or_create(user=request.user)
    pref.alerts_muted = request.POST.get("muted") == "1"
    pref.save(update_fields=["alerts_muted"])
    return render(request, "streams/wall.html#mute_toggle", {"alerts_muted": pref.alerts_muted})


@login_required
@require_POST
def wall_arrangement(request):
    """The operator's own wall: density and room order (saved; the grid is re-rendered in it)."""
    require_capability(request.user, "arrange_wall")
    pref, _created = OperatorPreference.objects.get_or_create(user=request.user)
    density, order = request.POST.get("density"), request.POST.get("order")
    if density is not None and density not in OperatorPreference.Density.values:
        return HttpResponse(_("无效的密度"), status=400)
    if order is not None and order not in OperatorPreference.Order.values:
        return HttpResponse(_("无效的排序"), status=400)
    rooms = request.POST.getlist("rooms")
    if len(rooms) > 1000 or any(len(slug) > 50 for slug in rooms):
        return HttpResponse(_("直播间列表过长"), status=400)
    pref.wall_density = density or pref.wall_density
    pref.wall_order = order or pref.wall_order
    if rooms:
        pref.room_order = list(dict.fromkeys(rooms))  # the dragged order; unknown slugs simply never match
        pref.wall_order = OperatorPreference.Order.CUSTOM
    pref.save(update_fields=["wall_density", "wall_order", "room_order"])
    return render(request, "streams/wall.html#grid", wall_context(request))


@login_required
@require_POST
def acknowledge_alert(request, alert_id):
    require_role(request.user, *ON_DUTY, what="acknowledge alert")
    alert = get_object_or_404(Alert, pk=alert_id)
    alert = services.acknowledge_alert(alert_id=alert.pk, user=request.user)
    alert = Alert.objects.select_related("room", "acknowledged_by").get(pk=alert.pk)
    return render(request, "streams/wall.html#alert_item", {"alert": alert})


def _triage_response(request):
    from .selectors import alert_triage

    return render(request, "streams/alerts.html#triage", {"triage": alert_triage()})


@login_required
@require_POST
def acknowledge_room_alerts(request, slug):
    """The sidebar's "acknowledge all" for one room: one action, one audit row."""
    require_capability(request.user, "acknowledge_room_alerts")
    room = get_object_or_404(LiveRoom, slug=slug)
    services.acknowledge_room_alerts(room=room, user=request.user)
    return _triage_response(request)


@login_required
@require_POST
def snooze_room_alerts(request, slug):
    require_capability(request.user, "snooze_room_alerts")
    room = get_object_or_404(LiveRoom, slug=slug)
    duration = request.POST.get("duration", "")
    if duration not in AlertSnooze.DURATIONS:
        return HttpResponse(_("请选择静音时长"), status=400)
    try:
        services.snooze_room_alerts(room=room, user=request.user, duration=duration)
    except ValueError:
        return HttpResponse(_("该直播间未开播,无法静音至本场结束"), status=409)
    return _triage_response(request)


@login_required
@require_POST
def unsnooze_room_alerts(request, slug):
    require_capability(request.user, "snooze_room_alerts")
    room = get_object_or_404(LiveRoom, slug=slug)
    services.unsnooze_room_alerts(room=room, user=request.user)
    return _triage_response(request)


def cue_screen_key(room):
    return signing.dumps(room.slug, salt="host-cue-screen")


@login_required
def room_detail(request, slug):
    require_role(request.user, *ON_DUTY, what="view room")
    room = get_object_or_404(LiveRoom, slug=slug)
    ctx = wall_context(request, [slug])
    history = ControlAction.objects.filter(room=room).select_related("actor")[:50]
    return render(request, "streams/room_detail.html", {
        **ctx, "room": room, "tile": ctx["tiles"][0] if ctx["tiles"] else None, "history": history,
        "announcement": current_announcement(room), "alerts": recent_alerts(room=room), "alerts_muted": _muted(request.user),
        "cue_url": request.build_absolute_uri(reverse("cue_screen", args=[slug])) + "?k=" + cue_screen_key(room),
        "cues": HostCue.objects.filter(room=room)[:10],
        "graphs": history_context(room),
        "chat": ChatMessage.objects.filter(room=room).order_by("-created_at")[:20],
        "room_panels": hooks.room_panels(room, request.user),
        # Demo rooms are fed by simulate_streams, whose lines can be told to misbehave.
        "demo_faults": slug in DEMO_ROOM_SLUGS and can(request.user, "inject_demo_fault"),
    })


def history_context(room):
    from datetime import timedelta

    from .selectors import line_history
    from .wall import history_graphs

    now = timezone.now()
    return history_graphs(line_history(room, minutes=15, now=now), now - timedelta(minutes=15), now)


@login_required
@require_GET
def room_history(request, slug):
    """A room's 15-minute graphs per line (fps, bitrate, jitter, loss), drawn on the server; the tile loads it
    when its "more" panel opens."""
    require_role(request.user, *ON_DUTY, what="view room history")
    room = get_object_or_404(LiveRoom, slug=slug)
    return render(request, "streams/wall.html#line_history", {"room": room, "graphs": history_context(room)})


@login_required
@require_GET
def room_thumbnail(request, slug):
    """The newest program thumbnail of a room (big walls show these instead of live previews)."""
    require_role(request.user, *ON_DUTY, what="view room thumbnail")
    jpeg = snapshots.load(slug)
    if jpeg is None:
        raise Http404("no recent picture")
    response = HttpResponse(jpeg, content_type="image/jpeg")
    response["Cache-Control"] = "private, max-age=2"
    return response


# --- viewer page ---------------------------------------------------------------------------------


def _viewer_for(request):
    """The Viewer row of this browser, if it has one, and the device cookie value to set.

    A page GET never creates a Viewer row (anonymous presence is recorded by the viewer socket only).
    """
    if request.user.is_authenticated:
        return Viewer.objects.filter(user=request.user).first(), None
    device = request.COOKIES.get(DEVICE_COOKIE, "")
    if device and len(device) <= 64 and device.replace("-", "").isalnum():
        return Viewer.objects.filter(device_id=device).first(), None
    return None, uuid.uuid4().hex


def _client_address(request):
    return request.META.get("REMOTE_ADDR") or None


def _accept_viewer_token(request, room, token):
    """A platform-signed token identifies the viewer: its cookie becomes the identity's device id."""
    try:
        uid = viewer_identity.verify(room.merchant, token)
    except viewer_identity.TokenError:
        return HttpResponse(_("观众身份令牌无效或已过期,请从平台重新进入直播间。"), status=400,
                            content_type="text/plain; charset=utf-8")
    viewer = viewer_identity.identified_viewer(room.merchant, uid)
    Viewer.objects.filter(pk=viewer.pk).update(last_address=_client_address(request),
                                               last_user_agent=request.META.get("HTTP_USER_AGENT", "")[:200])
    # Redirect to the clean address so the token does not linger in history or Referer headers.
    response = redirect("live_room", slug=room.slug)
    response.set_cookie(DEVICE_COOKIE, viewer.device_id, max_age=settings.VIEWER_TOKEN_MAX_TTL_S, httponly=True,
                        samesite="Lax")
    return response


def live_room(request, slug):
    room = get_object_or_404(LiveRoom.objects.exclude(status=LiveRoom.Status.ENDED), slug=slug)
    if "vt" in request.GET:
        return _accept_viewer_token(request, room, request.GET["vt"])
    viewer, device = _viewer_for(request)
    response = render(request, "streams/live.html", {
        "room": room, "announcement": current_announcement(room),
        "notices": viewer_notices.notices_for(room, viewer),
        "chat": list(reversed(ChatMessage.objects.filter(room=room).order_by("-created_at")[:30])),
        "panels": hooks.viewer_panels(room, request),
    })
    if device:
        response.set_cookie(DEVICE_COOKIE, device, max_age=3600 * 24 * 365, httponly=True, samesite="Lax")
    return response


@require_GET
def announcements_json(request, slug):
    """For external viewer apps: the pinned banner and the last announcements of a room."""
    room = get_object_or_404(LiveRoom, slug=slug)
    recent = Announcement.objects.filter(room=room)[:20]
    response = JsonResponse({
        "room": room.slug, **announcement_data(current_announcement(room)),
        "recent": [{"id": a.pk, "text": a.text, "kind": a.kind, "pinned_at": a.pinned_at.isoformat(),
                    "unpinned_at": a.unpinned_at.isoformat() if a.unpinned_at else None} for a in recent],
        "websocket": f"/ws/rooms/{room.slug}/announcements/",
    }, json_dumps_params={"ensure_ascii": False})
    response["Cache-Control"] = "no-cache"
    return response


# --- host cue screen --------------------------------------------------------------------------------


def cue_screen(request, slug):
    room = get_object_or_404(LiveRoom, slug=slug)
    key = request.GET.get("k", "")
    from .consumers import cue_key_ok

    if not cue_key_ok(slug, key):
        if not request.user.is_authenticated:
            return redirect(f"{reverse('login')}?next={request.get_full_path()}")
        require_role(request.user, *ON_DUTY, what="open cue screen")
    return render(request, "streams/cue.html", {"room": room, "key": key,
                                                "cues": HostCue.objects.filter(room=room)[:20]})


# --- audit -------------------------------------------------------------------------------------------


def _audit_queryset(form):
    rows = ControlAction.objects.select_related("actor", "room").order_by("-created_at", "-id")
    if form.is_valid():
        data = form.cleaned_data
        if data.get("period") == "archive":
            rows = ControlActionArchive.objects.select_related("actor", "room").order_by("-created_at", "-id")
        if data.get("room"):
            rows = rows.filter(room=data["room"])
        if data.get("user"):
            rows = rows.filter(actor__username__icontains=data["user"]) | rows.filter(
                actor_label__icontains=data["user"])
        if data.get("action"):
            rows = rows.filter(action=data["action"])
        if data.get("outcome"):
            rows = rows.filter(outcome=data["outcome"])
        if data.get("since"):
            rows = rows.filter(created_at__gte=data["since"])
        if data.get("until"):
            rows = rows.filter(created_at__lte=data["until"])
    return rows


@login_required
def audit(request):
    require_role(request.user, MANAGER, what="view audit")
    form = AuditFilterForm(request.GET or None)
    rows = _audit_queryset(form)
    page = Paginator(rows, 100).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    template = "streams/audit.html#audit_table" if request.htmx else "streams/audit.html"
    return render(request, template, {"form": form, "page": page, "query": query.urlencode()})


@login_required
def audit_csv(request):
    require_role(request.user, MANAGER, what="export audit")
    rows = _audit_queryset(AuditFilterForm(request.GET or None))
    header = [_("时间"), _("操作人"), _("直播间"), _("动作"), _("对象"), _("结果"), _("耗时(毫秒)"), _("原因")]
    # For people (opened in a spreadsheet): Beijing time, labels, room names.
    lines = ([timezone.localtime(row.created_at).strftime("%Y-%m-%d %H:%M:%S"), row.who,
              row.room.name if row.room_id else "", str(row.action_label), str(row.target_label),
              row.get_outcome_display(), "" if row.latency_ms is None else round(row.latency_ms, 1),
              str(row.reason_label)]
             for row in rows.iterator(chunk_size=2000))
    return csv_response(f"control-actions-{timezone.localdate():%Y%m%d}.csv", header, lines)


# --- announcement templates and canned replies (managers) -----------------------------------------------


@login_required
def announcement_templates(request):
    require_role(request.user, MANAGER, FLOOR_CONTROL, what="view announcement templates")
    can_edit = has_role(request.user, MANAGER)
    template_form = AnnouncementTemplateForm(prefix="t")
    reply_form = CannedReplyForm(prefix="r")
    if request.method == "POST":
        require_role(request.user, MANAGER, what="edit announcement templates")
        if "t-text" in request.POST:
            instance = AnnouncementTemplate.objects.filter(pk=request.POST.get("id") or 0).first()
            template_form = AnnouncementTemplateForm(request.POST, prefix="t", instance=instance)
            if template_form.is_valid():
                template_form.save()
                return redirect("announcement_templates")
        else:
            instance = CannedReply.objects.filter(pk=request.POST.get("id") or 0).first()
            reply_form = CannedReplyForm(request.POST, prefix="r", instance=instance)
            if reply_form.is_valid():
                reply_form.save()
                return redirect("announcement_templates")
    return render(request, "streams/templates_admin.html", {
        "templates": AnnouncementTemplate.objects.all(), "replies": CannedReply.objects.all(),
        "template_form": template_form, "reply_form": reply_form, "can_edit": can_edit,
    })
