"""Thin views: parse, authorise (require_role), call a service or selector, render a partial."""

import csv
import json
from datetime import datetime

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from controlroom.csv_export import csv_response
from controlroom.middleware import has_control_characters
from controlroom.roles import MANAGER, ON_DUTY, OPS, has_role, require_role
from incidents.models import Incident
from streams.models import LiveRoom, Viewer

from . import selectors, services
from .models import Budget, Campaign, DrawEntrant, Grant

try:
    from streams.viewer_consumers import DEVICE_COOKIE
except ImportError:  # the viewer page is not there yet
    DEVICE_COOKIE = "cr_device"

CAMPAIGN_ROLES = (OPS, MANAGER)


def _parse_dt(value):
    if not value:
        return None
    parsed = parse_datetime(value)
    if parsed is None:
        raise services.CompensationError(_("时间格式不正确:%(v)s") % {"v": value})
    if timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed)
    return parsed


def _int_or_none(value):
    value = (value or "").strip()
    if value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise services.CompensationError(_("「%(v)s」不是整数") % {"v": value}) from None


def _fen(value, what):
    """Amounts are typed in yuan with up to two decimals ("5", "5.20") and stored as integer fen."""
    value = (value or "").strip()
    if value == "":
        return None
    whole, _dot, frac = value.partition(".")
    if not whole.lstrip("-").isdigit() or (frac and (not frac.isdigit() or len(frac) > 2)):
        raise services.CompensationError(_("%(what)s 格式不正确(单位:元,最多两位小数)") % {"what": what})
    sign = -1 if whole.startswith("-") else 1
    return sign * (abs(int(whole)) * 100 + int((frac or "0").ljust(2, "0")))


@login_required
def campaign_list(request):
    require_role(request.user, *CAMPAIGN_ROLES, what="view campaigns")
    services.ensure_local_sweeper()  # embedded default: due draws close even after a restart
    campaigns = Campaign.objects.select_related("room", "incident", "created_by")[:100]
    return render(request, "compensation/campaigns.html", {
        "campaigns": campaigns, "budgets": Budget.objects.select_related("room")})


def _form_context(request, incident, data=None, error=None):
    rooms = LiveRoom.objects.order_by("name")
    budgets = Budget.objects.select_related("room")
    suggestion, downtime = None, None
    if incident is not None:
        start, end = selectors.incident_window(incident)
        downtime = services.visible_downtime_s(incident)
        eligible = selectors.eligible_count(incident.room_id, start, end, 60)
        cap = min((b.per_viewer_cap_fen for b in budgets), default=2000)
        suggestion = services.suggest(severity=incident.severity, downtime_s=downtime, eligible=eligible,
                                      per_viewer_cap_fen=cap)
        suggestion["eligible"] = eligible
        suggestion["amount_yuan"] = f"{suggestion['amount_fen'] // 100}.{suggestion['amount_fen'] % 100:02d}"
    return {"incident": incident, "rooms": rooms, "budgets": budgets, "kinds": Campaign.Kind.choices,
            "suggestion": suggestion, "downtime_s": downtime, "data": data or {}, "error": error}


@login_required
def campaign_new(request):
    require_role(request.user, *CAMPAIGN_ROLES, what="create_campaign")
    incident_id = request.GET.get("incident") or request.POST.get("incident")
    incident = get_object_or_404(Incident.objects.select_related("room"), pk=incident_id) if incident_id else None
    if request.method != "POST":
        return render(request, "compensation/campaign_form.html", _form_context(request, incident))
    data = request.POST
    try:
        room = incident.room if incident else get_object_or_404(LiveRoom, pk=_int_or_none(data.get("room")) or 0)
        budget = get_object_or_404(Budget, pk=_int_or_none(data.get("budget")) or 0)
        campaign = services.create_campaign(
            actor=request.user, room=room, budget=budget, incident=incident, kind=data.get("kind", ""),
            title=data.get("title", ""), amount_fen=_fen(data.get("amount_yuan"), _("金额")),
            share_count=_int_or_none(data.get("share_count")),
            share_cap_fen=_fen(data.get("share_cap_yuan"), _("单份上限")),
            winner_count=_int_or_none(data.get("winner_count")), keyword=data.get("keyword", ""),
            countdown_s=_int_or_none(data.get("countdown_s")) or 0,
            min_overlap_s=_int_or_none(data.get("min_overlap_s")) or 0,
            window_start=_parse_dt(data.get("window_start")), window_end=_parse_dt(data.get("window_end")),
            valid_until=_parse_dt(data.get("valid_until")),
            include_anonymous=data.get("include_anonymous") == "on",
            shop_url=data.get("shop_url", ""),
        )
    except services.CompensationError as exc:
        return render(request, "compensation/campaign_form.html",
                      _form_context(request, incident, data, exc.messages[0]), status=400)
    return redirect("compensation:detail", campaign.pk)


def _window_note(campaign):
    """Tell the operator when the incident's outage window no longer matches the draft's frozen window."""
    incident = campaign.incident
    if incident is None or campaign.status not in (Campaign.Status.DRAFT, Campaign.Status.APPROVED):
        return ""
    if incident.resolved_at is None:
        return _("事故尚未解决:补偿窗口截至创建时刻;事故解决后如需覆盖全部观众,请新建活动")
    if incident.resolved_at != campaign.window_end or incident.detected_at != campaign.window_start:
        return _("事故时间已更新,与本活动的补偿窗口不一致;如需按新窗口补偿,请取消并新建活动")
    return ""


def _detail_context(campaign, user):
    return {
        "window_note": _window_note(campaign),
        "campaign": campaign, "progress": selectors.campaign_progress(campaign),
        "report": selectors.campaign_report(campaign) if campaign.status != Campaign.Status.DRAFT else None,
        "needs_approval": services.needs_approval(campaign),
        "can_approve": has_role(user, MANAGER) and user.pk != campaign.created_by_id,
        "is_manager": has_role(user, MANAGER),
        "batches": selectors.campaign_batches_summary(campaign),
        "fraud": selectors.fraud_signals(campaign)
                 if campaign.status in (Campaign.Status.DRAFT, Campaign.Status.APPROVED) else None,
        "recent_grants": Grant.objects.filter(campaign=campaign).select_related("viewer")[:10],
        "winner_names": selectors.winner_names(campaign, public=False) if campaign.seed_revealed_at else [],
    }


def _audience_rows(upload):
    """CSV rows "platform_user_id,joined_at,left_at" (ISO 8601 with offset; a header row is skipped)."""
    try:
        text = upload.read(20 * 1024 * 1024 + 1).decode("utf-8-sig")
    except UnicodeDecodeError:
        raise services.CompensationError(_("文件必须是 UTF-8 编码的 CSV")) from None
    if len(text) > 20 * 1024 * 1024:
        raise services.CompensationError(_("文件太大(最多 20 MB)"))
    rows = []
    for number, row in enumerate(csv.reader(text.splitlines()), start=1):
        if not row or (number == 1 and row[0].strip().lower() == "platform_user_id"):
            continue
        if len(row) != 3:
            raise services.CompensationError(_("第 %(n)s 行应有 3 列:平台用户 ID、进入时间、离开时间") % {"n": number})
        try:
            rows.append((row[0], _parse_dt(row[1].strip()), _parse_dt(row[2].strip())))
        except (services.CompensationError, ValueError):
            raise services.CompensationError(_("第 %(n)s 行的时间格式不正确") % {"n": number}) from None
    return rows


@login_required
def audience_import(request):
    """Upload the platform's audience of a room (who watched, when): the trustworthy route to eligibility."""
    require_role(request.user, *CAMPAIGN_ROLES, what="import_audience")
    rooms = LiveRoom.objects.order_by("name")
    context, status = {"rooms": rooms}, 200
    if request.method == "POST":
        try:
            room = get_object_or_404(LiveRoom, pk=_int_or_none(request.POST.get("room")) or 0)
            upload = request.FILES.get("file")
            if upload is None:
                raise services.CompensationError(_("请选择要上传的 CSV 文件"))
            added, viewers = services.import_audience(actor=request.user, room=room, rows=_audience_rows(upload))
            messages.success(request, _("已导入 %(v)s 位平台观众的 %(n)s 段观看记录") % {"v": viewers, "n": added})
            return redirect("compensation:audience_import")
        except services.CompensationError as exc:
            context["error"], status = exc.messages[0], 400
    return render(request, "compensation/audience_import.html", context, status=status)


@login_required
def campaign_detail(request, campaign_id):
    require_role(request.user, *CAMPAIGN_ROLES, what="view campaign")
    campaign = get_object_or_404(Campaign.objects.select_related("room", "incident", "budget", "created_by",
                                                                 "approved_by"), pk=campaign_id)
    services.ensure_local_sweeper()
    return render(request, "compensation/campaign_detail.html", _detail_context(campaign, request.user))


def _act(request, campaign_id, fn, done_message, **kwargs):
    try:
        fn(actor=request.user, campaign_id=campaign_id, **kwargs)
        messages.success(request, done_message)
        status = 200
    except services.CompensationError as exc:
        messages.error(request, exc.messages[0])
        status = 400
    if request.htmx:
        campaign = get_object_or_404(Campaign.objects.select_related("room", "incident", "budget"), pk=campaign_id)
        return render(request, "compensation/campaign_detail.html#panel", _detail_context(campaign, request.user),
                      status=status)
    return redirect("compensation:detail", campaign_id)


@login_required
@require_POST
def campaign_approve(request, campaign_id):
    return _act(request, campaign_id, services.approve_campaign, _("已审批"))


@login_required
@require_POST
def campaign_issue(request, campaign_id):
    return _act(request, campaign_id, services.issue_campaign, _("已开始发放"))


@login_required
@require_POST
def campaign_cancel(request, campaign_id):
    return _act(request, campaign_id, services.cancel_campaign, _("已取消"), reason=request.POST.get("reason", ""))


@login_required
@require_POST
def campaign_revoke(request, campaign_id):
    return _act(request, campaign_id, services.revoke_campaign, _("已撤销未核销的券"),
                reason=request.POST.get("reason", ""))


@login_required
@require_POST
def campaign_draw(request, campaign_id):
    return _act(request, campaign_id, services.close_draw_now, _("已开奖"))


@login_required
@require_GET
def campaign_panel(request, campaign_id):
    """The summary/actions panel (re-fetched by the page when the progress bar reports the end)."""
    require_role(request.user, *CAMPAIGN_ROLES, what="view campaign")
    campaign = get_object_or_404(Campaign.objects.select_related("room", "incident", "budget", "created_by",
                                                                 "approved_by"), pk=campaign_id)
    return render(request, "compensation/campaign_detail.html#panel", _detail_context(campaign, request.user))


@login_required
@require_GET
def campaign_progress(request, campaign_id):
    require_role(request.user, *ON_DUTY, what="view campaign progress")
    campaign = get_object_or_404(Campaign.objects.select_related("room"), pk=campaign_id)
    return HttpResponse(services.render_progress(campaign)[0])


@login_required
@require_GET
def grants_csv(request, campaign_id):
    """CSV of every grant, streamed (a million rows must not sit in memory). The device cookie of a viewer
    is a credential and is never exported; identified viewers are listed by their platform user id."""
    require_role(request.user, *CAMPAIGN_ROLES, what="export grants")
    campaign = get_object_or_404(Campaign, pk=campaign_id)
    now = timezone.now()
    header = ["campaign_id", "kind", "code", "viewer_id", "user_id", "platform_user_id", "amount_fen",
              "issued_at", "valid_until", "state", "redeemed_at", "order_ref"]

    def rows():
        qs = (Grant.objects.filter(campaign=campaign)
              .values_list("code", "viewer_id", "viewer__user_id", "viewer__platform_user_id", "amount_fen",
                           "issued_at", "redeemed_at", "redeemed_order").order_by("viewer_id"))
        for code, viewer_id, user_id, platform_id, amount, issued_at, redeemed_at, order_ref in qs.iterator(5000):
            if redeemed_at:
                state = "redeemed"
            elif campaign.revoked_at:
                state = "revoked"
            elif campaign.valid_until and campaign.valid_until <= now:
                state = "expired"
            else:
                state = "valid"
            yield [campaign.pk, campaign.kind, code, viewer_id, user_id or "", platform_id or "", amount,
                   issued_at.isoformat(), campaign.valid_until.isoformat() if campaign.valid_until else "",
                   state, redeemed_at.isoformat() if redeemed_at else "", order_ref]

    return csv_response(f"campaign-{campaign.pk}-grants.csv", header, rows())


@login_required
def incident_report(request, incident_id):
    require_role(request.user, *CAMPAIGN_ROLES, what="compensation report")
    incident = get_object_or_404(Incident.objects.select_related("room"), pk=incident_id)
    rows, total = selectors.incident_report(incident)
    return render(request, "compensation/report.html", {"incident": incident, "rows": rows, "total": total})


@login_required
def wall_fragment(request):
    """Compact progress bars of campaigns being issued; the wall can hx-get or include this."""
    require_role(request.user, *ON_DUTY, what="view campaign progress")
    items = [services.render_progress(c)[1] for c in selectors.active_campaigns()]
    return render(request, "compensation/campaign_detail.html#wall", {"items": items})


# --- Public: verifiable draws ---------------------------------------------------------------------


def draw_verify(request, campaign_id):
    """The public page of a draw: how it is kept honest in plain words, the winners by their (masked) names, a
    check anyone can run (in the browser, or here on the server with ?check=1), and "did I win?" for the viewer
    of this browser or for a platform user id typed in."""
    campaign = get_object_or_404(Campaign.objects.select_related("room"), pk=campaign_id,
                                 kind__in=Campaign.DRAW_KINDS)
    lookup = (request.GET.get("uid") or "").strip()
    wants_check = request.GET.get("check") == "1" and campaign.seed_revealed_at is not None
    if (lookup or wants_check) and not _public_lookup_allowed(request):
        return render(request, "compensation/verify.html", {
            **selectors.draw_public_view(campaign, _viewer(request)),
            "refused": _("查询太频繁,请稍后再试")}, status=429)
    if len(lookup) > 64 or has_control_characters(lookup):
        lookup = ""
    looked_up = selectors.draw_standing(campaign, selectors.platform_viewer(campaign.room, lookup)) if lookup else None
    return render(request, "compensation/verify.html", {
        **selectors.draw_public_view(campaign, _viewer(request)),
        "result": services.draw_verification(campaign) if wants_check else None,
        "lookup": lookup, "looked_up": looked_up})


def _public_lookup_allowed(request):
    """Anyone may look things up on the public draw page, within the per-address request budget."""
    from asgiref.sync import async_to_sync

    from streams import client_limits

    return async_to_sync(client_limits.take_request)(client_limits.client_address(request)) is None


def draw_entrants(request, campaign_id):
    """The frozen entrant list, exactly as hashed (published once the draw has closed)."""
    campaign = get_object_or_404(Campaign, pk=campaign_id, kind__in=Campaign.DRAW_KINDS)
    if not campaign.draw_closed_at:
        return HttpResponse(_("名单在截止后公布"), status=404, content_type="text/plain; charset=utf-8")
    ids = DrawEntrant.objects.filter(campaign=campaign).values_list("viewer_id", flat=True)
    text = "\n".join(str(i) for i in sorted(ids))
    return HttpResponse(text, content_type="text/plain; charset=utf-8")


# --- Viewer-facing ------------------------------------------------------------------------------


def _viewer(request):
    """The Viewer of this browser (account or device cookie set by the viewer page), or None."""
    if request.user.is_authenticated:
        return Viewer.objects.filter(user=request.user).first()
    device = request.COOKIES.get(DEVICE_COOKIE, "")
    return Viewer.objects.filter(device_id=device).first() if device else None


def _viewer_answer(request, fn):
    try:
        result = fn(_viewer(request))
    except services.CompensationError as exc:
        return JsonResponse({"ok": False, "message": exc.messages[0]}, status=400,
                            json_dumps_params={"ensure_ascii": False})
    return JsonResponse({"ok": True, **result}, json_dumps_params={"ensure_ascii": False})


@require_POST
def viewer_join(request, campaign_id):
    """A viewer presses "join" on a lucky bag (viewer page); same as commenting its keyword."""
    return _viewer_answer(request, lambda v: {
        "entered": services.enter_draw(campaign_id=campaign_id, viewer=v).entered_at.isoformat(),
        "message": _("已参与,开奖后公布结果")})


@require_POST
def viewer_claim(request, campaign_id):
    def claim(viewer):
        grant = services.claim_red_packet(campaign_id=campaign_id, viewer=viewer)
        return {"amount_fen": grant.amount_fen, "message": services.notice_text(grant)}
    return _viewer_answer(request, claim)


def viewer_offers(request, slug):
    """Red packets and lucky bags this viewer can act on now (a fragment for the viewer page)."""
    room = get_object_or_404(LiveRoom, slug=slug)
    viewer = _viewer(request)
    return render(request, "compensation/viewer_offers.html", {
        "room": room, "offers": selectors.open_offers(room, viewer)})


# --- Shop redemption API (JSON, bearer token, idempotent on request_id) ----------------------------


def _shop_client(request):
    header = request.headers.get("Authorization", "")
    scheme, _sp, token = header.partition(" ")
    client = services.shop_client_for_token(token.strip()) if scheme.lower() == "bearer" else None
    if client is None:
        raise PermissionDenied("invalid shop token")
    return client


def _has_control_characters(value):
    if isinstance(value, dict):
        return any(_has_control_characters(k) or _has_control_characters(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_control_characters(v) for v in value)
    return has_control_characters(value)


def _api(fn):
    def view(request, *args, **kwargs):
        try:
            client = _shop_client(request)
        except PermissionDenied:
            return JsonResponse({"error": "unauthorized", "message": _("缺少或无效的接口令牌")}, status=401,
                                json_dumps_params={"ensure_ascii": False})
        body = {}
        if request.method == "POST":
            try:
                body = json.loads(request.body or b"{}")
            except (ValueError, UnicodeDecodeError):
                return JsonResponse({"error": "bad_json", "message": _("请求体不是合法的 JSON")}, status=400,
                                    json_dumps_params={"ensure_ascii": False})
            if not isinstance(body, dict):
                return JsonResponse({"error": "bad_json", "message": _("请求体必须是 JSON 对象")}, status=400,
                                    json_dumps_params={"ensure_ascii": False})
            if _has_control_characters(body):
                return JsonResponse({"error": "bad_request", "message": _("请求包含不允许的控制字符(如 NUL)")},
                                    status=400, json_dumps_params={"ensure_ascii": False})
        status, payload = fn(request, client, body, *args, **kwargs)
        return JsonResponse(payload, status=status, json_dumps_params={"ensure_ascii": False})
    view.__name__ = fn.__name__
    return csrf_exempt(view)


@_api
def api_validate(request, client, body):
    if request.method != "POST":
        return 405, {"error": "method_not_allowed"}
    code = str(body.get("code") or "").strip().upper()
    grant = services.shop_grants(client).select_related("campaign").filter(code=code).first() if code else None
    if grant is None:
        return 404, {"error": "unknown_code", "message": _("券码不存在")}
    info = services.describe_grant(grant)
    return 200, {"valid": info["state"] == "valid", **info}


@_api
def api_redeem(request, client, body):
    if request.method != "POST":
        return 405, {"error": "method_not_allowed"}
    return services.redeem(client=client, request_id=str(body.get("request_id") or ""),
                           code=str(body.get("code") or ""), order_ref=str(body.get("order_ref") or ""))


@_api
def api_report(request, client, body, campaign_id):
    campaign = services.shop_campaigns(client).filter(pk=campaign_id).first()
    if campaign is None:
        return 404, {"error": "unknown_campaign", "message": _("活动不存在")}
    report = selectors.campaign_report(campaign)
    return 200, {"campaign": campaign.pk, "kind": campaign.kind, "status": campaign.status,
                 "eligible": campaign.eligible_count, "revoked": bool(campaign.revoked_at), **report,
                 "generated_at": datetime.now(tz=timezone.get_current_timezone()).isoformat()}


@_api
def api_audience(request, client, body, slug):
    """The platform's audience of one of this merchant's rooms: {"viewers": [{platform_user_id, joined_at,
    left_at}, ...]} (ISO 8601 with offset). Identified viewers, eligible for compensation."""
    if request.method != "POST":
        return 405, {"error": "method_not_allowed"}
    room = LiveRoom.objects.filter(slug=slug, merchant=client.merchant).first() if client.merchant else None
    if room is None:
        return 404, {"error": "unknown_room", "message": _("直播间不存在")}
    viewers = body.get("viewers")
    if not isinstance(viewers, list):
        return 400, {"error": "bad_request", "message": _("viewers 必须是数组")}
    try:
        rows = []
        for number, item in enumerate(viewers, start=1):
            if not isinstance(item, dict):
                raise services.CompensationError(_("第 %(n)s 项必须是对象") % {"n": number})
            try:
                rows.append((str(item.get("platform_user_id") or ""), _parse_dt(str(item.get("joined_at") or "")),
                             _parse_dt(str(item.get("left_at") or ""))))
            except (services.CompensationError, ValueError):
                raise services.CompensationError(_("第 %(n)s 项的时间格式不正确") % {"n": number}) from None
        added, count = services.import_audience(actor=f"shop:{client.name}", room=room, rows=rows, source="api")
    except services.CompensationError as exc:
        return 400, {"error": "bad_request", "message": exc.messages[0]}
    return 200, {"ok": True, "room": room.slug, "sessions_added": added, "viewers": count}
