"""Thin views: parse, authorise with require_role, call a service or selector, render a partial."""

from datetime import datetime

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import BadRequest, PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, HttpResponseBadRequest
from django.utils.html import format_html
from django.utils.http import url_has_allowed_host_and_scheme
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.core import signing
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy
from django.views.decorators.http import require_POST

from controlroom.csv_export import csv_response
from controlroom.roles import MANAGER, ON_DUTY, ROLE_LABELS, can, require_capability, require_role, roles_of
from streams.demo import DEMO_ROOMS
from streams.models import LiveRoom

from . import analytics, charts, paging, selectors, services
from .forms import (
    ActionItemFormSet,
    DeclareIncidentForm,
    IncidentTypeForm,
    MilestoneCorrectionForm,
    ReviewForm,
    RunbookStepFormSet,
)
from .models import (
    WEEKDAYS,
    ClaimLink,
    DutyShift,
    Incident,
    IncidentStep,
    IncidentTimelineEntry,
    IncidentType,
    PagingRobot,
    Severity,
    StepAction,
)

PAGE = "incidents/detail.html"


def _bands(request):
    bands = analytics.default_bands()
    for attr in ("night_start", "night_end"):
        raw = request.GET.get(attr)
        if raw not in (None, ""):
            try:
                value = int(raw)
            except ValueError:
                continue
            if 0 <= value <= 24:
                setattr(bands, attr, value)
    return bands


def _refuse(request, exc, status=400):
    message = exc.messages[0] if isinstance(exc, ValidationError) else str(exc)
    if request.htmx:
        # Messages may quote what was posted: always escaped.
        return HttpResponse(format_html('<div class="flash error" role="alert">{}</div>', message), status=status)
    messages.error(request, message)
    return None


def _refused(request, pk, exc, status):
    """A refused edit: the message in place (htmx) or on the page, with the refusal's status code."""
    return _refuse(request, exc, status) or redirect("incidents:detail", pk=pk)


# --- Case library -----------------------------------------------------------------------------

@login_required
def library(request):
    require_role(request.user, MANAGER, what="incident library")
    bands = _bands(request)
    qs = selectors.filter_incidents(request.GET, bands.night_start, bands.night_end)
    page = Paginator(qs, 50).get_page(request.GET.get("page"))
    context = {
        "page": page, "params": request.GET, "types": IncidentType.objects.all(),
        "rooms": LiveRoom.objects.order_by("name"),
        "merchants": LiveRoom.objects.order_by("merchant").values_list("merchant", flat=True).distinct(),
        "statuses": Incident.Status.choices, "severities": Severity.choices,
        "query": request.GET.urlencode(), "bands": bands,
    }
    template = "incidents/library.html#results" if request.htmx else "incidents/library.html"
    return render(request, template, context)


def _local(dt):
    return timezone.localtime(dt).strftime("%Y-%m-%d %H:%M:%S") if dt else ""


@login_required
def library_csv(request):
    require_role(request.user, MANAGER, what="export incident library")
    bands = _bands(request)
    qs = selectors.filter_incidents(request.GET, bands.night_start, bands.night_end)
    header = ["id", _("标题"), _("直播间"), _("商家"), _("类型"), _("级别"), _("状态"), _("演练"),
              _("发现时间"), _("响应时间"), _("缓解时间"), _("解决时间"), _("复盘时间"),
              _("负责人"), _("原因"), _("处理过程"), _("结果")]
    rows = ([i.pk, i.display_title, i.room.name, i.room.merchant, i.incident_type.display_name, f"SEV{i.severity}",
             i.get_status_display(), int(i.is_drill), _local(i.detected_at), _local(i.acknowledged_at),
             _local(i.mitigated_at), _local(i.resolved_at), _local(i.reviewed_at),
             i.owner.get_username() if i.owner_id else "", i.cause, i.handling, i.outcome]
            for i in qs.iterator(chunk_size=2000))
    return csv_response("incidents.csv", header, rows, stream=False)


# --- One incident -----------------------------------------------------------------------------

def _incident_context(request, incident):
    held = roles_of(request.user)
    quiet = request.GET.get("quiet") == "1"
    checklists = selectors.checklists(incident)
    mine = [c for c in checklists if c["role"] in held or MANAGER in held]
    return {
        "incident": incident, "timeline": selectors.timeline(incident, hide_noise=quiet), "quiet": quiet,
        "checklists": checklists, "merge_candidates": paging.merge_candidates(incident) if incident.is_open else [],
        "my_checklists": mine, "can_act": True, "is_manager": MANAGER in held,
        "correction_form": MilestoneCorrectionForm(), "severities": Severity.choices,
        "review": getattr(incident, "review", None) if hasattr(incident, "review") else None,
        "compensation_url": f"/compensation/new?incident={incident.pk}",
    }


@login_required
def detail(request, pk):
    require_capability(request.user, "view_incidents", what="view incident")
    incident = selectors.incident_for_page(pk)
    if incident is None:
        raise Http404
    return render(request, PAGE, _incident_context(request, incident))


@login_required
def timeline_csv(request, pk):
    require_role(request.user, *ON_DUTY, what="export incident timeline")
    incident = get_object_or_404(Incident, pk=pk)
    import json

    # For people: the entries as the page shows them, in the reader's language (no internal data column).
    header = [_("时间"), _("类型"), _("内容"), _("操作人"), _("置顶")]
    rows = [[_local(e.at), e.get_kind_display(), e.display_text, e.who, _("是") if e.pinned else ""]
            for e in reversed(selectors.timeline(incident))]  # a record reads oldest first
    return csv_response(f"incident-{pk}-timeline.csv", header, rows, stream=False)


def _local_next(request):
    """`next` only when it stays on this site (an open redirect would lend our name to phishing)."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                                  require_https=request.is_secure()):
        return target
    return ""


@require_POST
@login_required
def declare(request):
    require_role(request.user, *ON_DUTY, what="declare incident")
    form = DeclareIncidentForm(request.POST)
    if not form.is_valid():
        if request.htmx:
            return HttpResponse(format_html('<div class="flash error">{}</div>', form.errors.as_text()), status=400)
        messages.error(request, form.errors.as_text())
        return redirect(_local_next(request) or reverse("incidents:new"))
    data = form.cleaned_data
    if data["is_drill"] and data["room"].slug not in {slug for slug, *_ in DEMO_ROOMS}:
        messages.error(request, _("演练只能在演示直播间进行。"))
        return redirect(reverse("incidents:new"))
    incident = services.open_incident(
        room=data["room"], incident_type=data["incident_type"], actor=request.user, severity=data["severity"],
        title=data["title"], is_drill=data["is_drill"], source="drill" if data["is_drill"] else "manual")
    if incident.deduplicated:
        messages.info(request, _("该直播间已有同类型未结束的事故,已并入 #%(id)s。") % {"id": incident.pk})
    url = reverse("incidents:detail", args=[incident.pk])
    if request.htmx:
        response = HttpResponse(status=204)
        response["HX-Redirect"] = url
        return response
    return redirect(url)


@login_required
def new(request):
    require_role(request.user, *ON_DUTY, what="declare incident")
    form = DeclareIncidentForm(initial={"room": request.GET.get("room"), "is_drill": request.GET.get("drill") == "1"})
    return render(request, "incidents/new.html", {"form": form, "demo_rooms": [name for _slug, name, *_rest in DEMO_ROOMS]})


@require_POST
@login_required
def do_transition(request, pk):
    require_role(request.user, *ON_DUTY, what="incident transition")
    incident = get_object_or_404(Incident, pk=pk)
    post = request.POST
    if incident.is_open and any(k in post for k in ("cause", "handling", "outcome")):
        # Keep what was typed even if the transition below is refused.
        services.update_case_record(incident=incident, actor=request.user, cause=post.get("cause", incident.cause),
                                    handling=post.get("handling", incident.handling),
                                    outcome=post.get("outcome", incident.outcome))
    try:
        services.transition(
            incident=incident, to=post.get("to", ""), actor=request.user, reason=post.get("reason", ""),
            cause=post.get("cause"), handling=post.get("handling"), outcome=post.get("outcome"))
    except ValidationError as exc:
        response = _refuse(request, exc)
        if response is not None:
            return response
    if request.htmx:
        return render(request, f"{PAGE}#header", {"incident": selectors.incident_for_page(pk)})
    return redirect("incidents:detail", pk=pk)


@require_POST
@login_required
def update_case(request, pk):
    require_role(request.user, *ON_DUTY, what="update case record")
    incident = get_object_or_404(Incident, pk=pk)
    p = request.POST
    try:
        # A field left out keeps its text: a partial post never blanks the record.
        services.update_case_record(incident=incident, actor=request.user, cause=p.get("cause", incident.cause),
                                    handling=p.get("handling", incident.handling),
                                    outcome=p.get("outcome", incident.outcome), reason=p.get("reason", ""))
    except PermissionDenied as exc:
        return _refused(request, pk, exc, 403)
    except ValidationError as exc:
        return _refused(request, pk, exc, 400)
    if request.htmx:
        return render(request, f"{PAGE}#header", {"incident": selectors.incident_for_page(pk)})
    return redirect("incidents:detail", pk=pk)


@require_POST
@login_required
def update_meta(request, pk):
    require_role(request.user, *ON_DUTY, what="update incident severity/owner")
    incident = get_object_or_404(Incident, pk=pk)
    owner = request.user if request.POST.get("take_ownership") else None
    severity = request.POST.get("severity") or None
    if severity is not None and severity not in {str(v) for v, _ in Severity.choices}:
        return HttpResponseBadRequest(_("无效的级别"))
    try:
        services.set_severity_and_owner(incident=incident, actor=request.user, severity=severity, owner=owner,
                                        reason=request.POST.get("reason", ""))
    except PermissionDenied as exc:
        return _refused(request, pk, exc, 403)
    except ValidationError as exc:
        return _refused(request, pk, exc, 400)
    if request.htmx:
        return render(request, f"{PAGE}#header", {"incident": selectors.incident_for_page(pk)})
    return redirect("incidents:detail", pk=pk)


@require_POST
@login_required
def correct(request, pk):
    require_role(request.user, MANAGER, what="correct incident milestone")
    incident = get_object_or_404(Incident, pk=pk)
    form = MilestoneCorrectionForm(request.POST)
    if not form.is_valid():
        messages.error(request, form.errors.as_text())
        return redirect("incidents:detail", pk=pk)
    try:
        services.correct_milestone(incident=incident, actor=request.user, **form.cleaned_data)
        messages.success(request, _("已修正。"))
    except ValidationError as exc:
        messages.error(request, exc.messages[0])
    return redirect("incidents:detail", pk=pk)


@require_POST
@login_required
def add_note(request, pk):
    require_role(request.user, *ON_DUTY, what="add incident note")
    incident = get_object_or_404(Incident, pk=pk)
    try:
        services.add_note(incident=incident, text=request.POST.get("text", ""), actor=request.user)
    except ValidationError as exc:
        response = _refuse(request, exc)
        if response is not None:
            return response
    if request.htmx:
        return render(request, f"{PAGE}#timeline", {"incident": incident, "timeline": selectors.timeline(incident)})
    return redirect("incidents:detail", pk=pk)


@require_POST
@login_required
def pin_entry(request, pk, entry_id):
    require_role(request.user, *ON_DUTY, what="pin timeline entry")
    entry = get_object_or_404(IncidentTimelineEntry, pk=entry_id, incident_id=pk)
    services.set_pinned(entry=entry, pinned=request.POST.get("pinned") == "1", actor=request.user)
    incident = entry.incident
    if request.htmx:
        return render(request, f"{PAGE}#timeline", {"incident": incident, "timeline": selectors.timeline(incident)})
    return redirect("incidents:detail", pk=pk)


@require_POST
@login_required
def complete_step(request, pk, step_id):
    require_role(request.user, *ON_DUTY, what="complete runbook step")
    step = get_object_or_404(IncidentStep.objects.select_related("incident"), pk=step_id, incident_id=pk)
    if not services.can_complete_step(request.user, step):
        require_role(request.user, step.role, MANAGER, what=f"complete {step.role} step")
    error = None
    try:
        step, error = services.complete_step(step=step, actor=request.user,
                                             run_action=request.POST.get("run_action", "1") == "1")
    except ValidationError as exc:
        error = exc.messages[0]
    if step.action == StepAction.OPEN_COMPENSATION and error is None and request.POST.get("follow") == "1":
        url = f"/compensation/new?incident={pk}"
        if request.htmx:
            response = HttpResponse(status=204)
            response["HX-Redirect"] = url
            return response
        return redirect(url)
    incident = selectors.incident_for_page(pk)
    checklist = next(c for c in selectors.checklists(incident) if c["role"] == step.role)
    if request.htmx:
        response = render(request, f"{PAGE}#checklist", {"incident": incident, "checklist": checklist,
                                                          "can_act": True, "error": error})
        if error:
            response["HX-Trigger"] = "incident-step-failed"
        return response
    if error:
        messages.error(request, error)
    return redirect("incidents:detail", pk=pk)


@login_required
def room_panel(request, slug):
    """The wall's embeddable partial: this room's open incidents and the viewer's role checklist."""
    require_role(request.user, *ON_DUTY, what="room incident panel")
    room = get_object_or_404(LiveRoom, slug=slug)
    held = roles_of(request.user)
    role = next((r for r in ("ops", "floor_control", "tech_support") if r in held), "ops")
    return render(request, "incidents/room_panel.html#embed", selectors.room_panel(room, role))


# --- Review -----------------------------------------------------------------------------------

@login_required
def review(request, pk):
    require_role(request.user, MANAGER, what="incident review")
    incident = selectors.incident_for_page(pk)
    if incident is None:
        raise Http404
    existing = getattr(incident, "review", None) if hasattr(incident, "review") else None
    if request.method == "POST":
        form = ReviewForm(request.POST)
        items = ActionItemFormSet(request.POST, prefix="items")
        if form.is_valid() and items.is_valid():
            try:
                services.save_review(
                    incident=incident, actor=request.user, **form.cleaned_data,
                    action_items=[f.cleaned_data for f in items.forms if f.cleaned_data.get("text")],
                    sign_off=request.POST.get("sign_off") == "1")
                messages.success(request, _("复盘已保存。"))
                return redirect("incidents:detail", pk=pk)
            except ValidationError as exc:
                messages.error(request, exc.messages[0])
    else:
        initial = {}
        item_initial = []
        if existing:
            initial = {"root_cause": existing.root_cause, "went_well": existing.went_well,
                       "to_improve": existing.to_improve}
            item_initial = [{"text": a.text, "owner": a.owner_id, "due_date": a.due_date}
                            for a in existing.action_items.all()]
        form = ReviewForm(initial=initial)
        items = ActionItemFormSet(initial=item_initial, prefix="items")
    return render(request, "incidents/review.html", {"incident": incident, "form": form, "items": items,
                                                     "review": existing})


@login_required
def drill_report(request, pk):
    require_role(request.user, *ON_DUTY, what="drill report")
    incident = selectors.incident_for_page(pk)
    if incident is None:
        raise Http404
    checklists = selectors.checklists(incident)
    total = sum(1 for c in checklists for s in c["steps"])
    done = sum(c["done"] for c in checklists)
    return render(request, "incidents/drill_report.html", {
        "incident": incident, "checklists": checklists, "total": total, "done": done,
        "elapsed_s": selectors.duration_s(incident.detected_at, incident.resolved_at or timezone.now()),
    })


# --- Types and runbooks (managers) --------------------------------------------------------------

@login_required
def types(request):
    require_role(request.user, MANAGER, what="incident types")
    rows = []
    for t in IncidentType.objects.all():
        rows.append({"type": t, "runbook": t.current_runbook()})
    return render(request, "incidents/types.html", {"rows": rows})


@login_required
def edit_type(request, slug):
    require_role(request.user, MANAGER, what="edit incident type")
    itype = get_object_or_404(IncidentType, slug=slug)
    runbook = itype.current_runbook()
    if request.method == "POST":
        form = IncidentTypeForm(request.POST)
        steps = RunbookStepFormSet(request.POST, prefix="steps")
        if form.is_valid() and steps.is_valid():
            services.update_incident_type(incident_type=itype, actor=request.user, **form.cleaned_data)
            new_steps = [f.cleaned_data for f in steps.forms
                         if f.cleaned_data and not f.cleaned_data.get("DELETE") and f.cleaned_data.get("title")]
            keys = ("role", "title", "title_en", "instructions", "action", "action_param")
            old_steps = [{k: getattr(s, k) for k in keys} for s in runbook.steps.all()] if runbook else []
            normalised = [{k: (s.get(k) or "") for k in keys} for s in new_steps]
            if normalised != old_steps:
                try:
                    new_runbook = services.publish_runbook_version(
                        incident_type=itype, actor=request.user, steps=new_steps,
                        summary=request.POST.get("summary", ""))
                    messages.success(request, _("已发布预案 v%(v)s。") % {"v": new_runbook.version})
                except ValidationError as exc:
                    messages.error(request, exc.messages[0])
                    return redirect("incidents:edit_type", slug=slug)
            return redirect("incidents:types")
    else:
        form = IncidentTypeForm(initial={"name": itype.name, "default_severity": itype.default_severity,
                                         "description": itype.description, "name_en": itype.name_en,
                                         "description_en": itype.description_en})
        initial = [{"role": s.role, "title": s.title, "title_en": s.title_en, "instructions": s.instructions,
                    "action": s.action, "action_param": s.action_param}
                   for s in (runbook.steps.all() if runbook else [])]
        steps = RunbookStepFormSet(initial=initial, prefix="steps")
    return render(request, "incidents/edit_type.html", {"itype": itype, "form": form, "steps": steps,
                                                        "runbook": runbook,
                                                        "versions": itype.runbooks.all()})


# --- Analytics --------------------------------------------------------------------------------------

EARLIEST_DAY = datetime(2000, 1, 1).date()


def _range(request):
    """The analytics period from ?days= or ?date_from=&date_to= (local days); BadRequest when out of bounds."""
    days = request.GET.get("days") or ""
    start, end = analytics.default_range(min(int(days), 3660) if days.isdigit() and int(days) > 0 else 90)
    tz = timezone.get_default_timezone()
    latest_day = timezone.localdate() + timezone.timedelta(days=366)
    for key in ("date_from", "date_to"):
        raw = request.GET.get(key)
        if raw:
            try:
                day = datetime.strptime(raw, "%Y-%m-%d").date()
            except ValueError:
                continue
            if not EARLIEST_DAY <= day <= latest_day:
                raise BadRequest(_("日期须在 %(a)s 至 %(b)s 之间。") % {"a": EARLIEST_DAY, "b": latest_day})
            at = timezone.make_aware(datetime.combine(day, datetime.min.time()), tz)
            if key == "date_from":
                start = at
            else:
                end = at + timezone.timedelta(days=1)
    if end <= start:
        raise BadRequest(_("结束日期不能早于开始日期。"))
    return start, end


def _bad_range(exc):
    return HttpResponseBadRequest(str(exc), content_type="text/plain; charset=utf-8")


@login_required
def analytics_page(request):
    require_role(request.user, MANAGER, what="incident analytics")
    try:
        start, end = _range(request)
    except BadRequest as exc:
        return _bad_range(exc)
    bands = _bands(request)
    data = analytics.dashboard(start, end, bands)
    return render(request, "incidents/analytics.html", {
        "start": start, "end": end - timezone.timedelta(seconds=1), "bands": bands,
        "view": charts.build(data), "query": request.GET.urlencode(),
    })


@login_required
def analytics_csv(request):
    require_role(request.user, MANAGER, what="incident analytics export")
    try:
        start, end = _range(request)
    except BadRequest as exc:
        return _bad_range(exc)
    bands = _bands(request)
    data = analytics.dashboard(start, end, bands)
    view = charts.build(data)
    rows = [[section, key, metric, "" if value is None else value]
            for section, key, metric, value in charts.flat_rows(view)]
    return csv_response("incident-analytics.csv", ["section", "key", "metric", "value"], rows, stream=False)


# --- Open incidents, ownership, duplicates (everyone on duty) --------------------------------------

def _open_list_context(request):
    return {"incidents": paging.open_incidents(), "me": request.user}


@login_required
def open_list(request):
    require_capability(request.user, "view_incidents", what="open incidents")
    paging.ensure_local_ticker()
    template = "incidents/open_list.html#list" if request.htmx else "incidents/open_list.html"
    return render(request, template, _open_list_context(request))


@require_POST
@login_required
def take(request, pk):
    """"我来处理" from the page or the open list: the user becomes the commander."""
    require_capability(request.user, "take_incident", what="take incident command")
    incident = get_object_or_404(Incident, pk=pk)
    from_list = request.POST.get("from") == "list"
    error = None
    try:
        services.take_command(incident=incident, actor=request.user, via="page")
    except ValidationError as exc:
        if not from_list:
            return _refused(request, pk, exc, 400)
        error = exc.messages[0]
    if from_list:
        if request.htmx:  # the list again, with the refusal above it (a closed incident drops out)
            return render(request, "incidents/open_list.html#list", {**_open_list_context(request), "error": error})
        if error:
            messages.error(request, error)
        return redirect("incidents:open_list")
    if request.htmx:
        return render(request, f"{PAGE}#header", {"incident": selectors.incident_for_page(pk)})
    return redirect("incidents:detail", pk=pk)


@login_required
def claim(request, token):
    """The "我来处理" link of a page (signed, expiring, single use): after login, confirm, take command.

    Opening the link only asks: chat apps and browsers fetch links ahead (previews, prefetch), and a fetch
    must never make someone the commander. The press of the button (a POST) does."""
    require_capability(request.user, "take_incident", what="claim incident from a page")
    try:
        link = paging.read_claim_token(token)
    except signing.SignatureExpired:
        return render(request, "incidents/claim_failed.html",
                      {"message": _("链接已过期,请打开事故页面接手。")}, status=410)
    except (signing.BadSignature, ClaimLink.DoesNotExist):
        return render(request, "incidents/claim_failed.html", {"message": _("链接无效。")}, status=404)
    if request.method != "POST":
        return render(request, "incidents/claim_confirm.html", {"incident": link.incident, "link": link})
    try:
        services.take_command(incident=link.incident, actor=request.user, via="link", link=link)
        messages.success(request, _("你已接手该事故的指挥。"))
    except ValidationError as exc:
        messages.info(request, exc.messages[0])
    return redirect("incidents:detail", pk=link.incident_id)


@require_POST
@login_required
def merge(request, pk):
    require_capability(request.user, "merge_incidents", what="merge duplicate incidents")
    duplicate = get_object_or_404(Incident, pk=pk)
    try:
        into_id = int(request.POST.get("into", ""))
    except ValueError:
        return _refused(request, pk, ValidationError(_("请选择要并入的事故。")), 400)
    into = get_object_or_404(Incident, pk=into_id)
    try:
        into = services.merge_duplicate(duplicate=duplicate, into=into, actor=request.user,
                                        reason=request.POST.get("reason", ""))
    except ValidationError as exc:
        return _refused(request, pk, exc, 400)
    messages.success(request, _("已标记为 #%(id)s 的重复事故。") % {"id": into.pk})
    url = reverse("incidents:detail", args=[into.pk])
    if request.htmx:
        response = HttpResponse(status=204)
        response["HX-Redirect"] = url
        return response
    return redirect(url)


@login_required
def timeline_part(request, pk):
    """The timeline partial, optionally without system noise (the filter swaps it with htmx)."""
    require_capability(request.user, "view_incidents", what="incident timeline")
    incident = get_object_or_404(Incident, pk=pk)
    quiet = request.GET.get("quiet") == "1"
    return render(request, f"{PAGE}#timeline", {"incident": incident, "quiet": quiet,
                                                "timeline": selectors.timeline(incident, hide_noise=quiet)})


# --- Duty roster and group robots --------------------------------------------------------------------

def _duty_context(request):
    from django.contrib.auth import get_user_model

    ctx = {"ack_minutes": settings.PAGING_ACK_MINUTES, "no_robots": not PagingRobot.objects.filter(enabled=True).exists(),
           "on_duty": [(role, ROLE_LABELS[role], shifts) for role, shifts in paging.on_duty().items()],
           "now": timezone.now(), "can_edit_roster": can(request.user, "edit_duty_roster"),
           "can_edit_robots": can(request.user, "edit_paging_robots"), "roles": list(ROLE_LABELS.items()),
           "weekdays": [(d, WEEKDAY_LABELS[d]) for d in WEEKDAYS]}
    if ctx["can_edit_roster"]:
        ctx["roster"] = paging.roster()
        ctx["people"] = get_user_model().objects.filter(is_active=True, groups__name__in=list(ROLE_LABELS)) \
            .distinct().order_by("username")
    if ctx["can_edit_robots"]:
        ctx["robots"] = list(PagingRobot.objects.all())
        ctx["platforms"] = PagingRobot.Platform.choices
        ctx["deliveries"] = paging.recent_deliveries()
    return ctx


WEEKDAY_LABELS = {"1": _lazy("周一"), "2": _lazy("周二"), "3": _lazy("周三"), "4": _lazy("周四"), "5": _lazy("周五"),
                  "6": _lazy("周六"), "7": _lazy("周日")}


@login_required
def duty(request):
    require_capability(request.user, "view_duty_roster", what="duty roster")
    paging.ensure_local_ticker()  # embedded default: escalations keep running after a restart
    return render(request, "incidents/duty.html", _duty_context(request))


def _parse_time(raw):
    try:
        return datetime.strptime((raw or "").strip(), "%H:%M").time()
    except ValueError:
        raise paging.PagingError(_("时间格式应为 时:分,例如 22:00。")) from None


@require_POST
@login_required
def duty_add(request):
    require_capability(request.user, "edit_duty_roster", what="edit duty roster")
    from django.contrib.auth import get_user_model

    p = request.POST
    user = get_user_model().objects.filter(pk=p.get("user") or 0, is_active=True).first() \
        if (p.get("user") or "").isdigit() else None
    try:
        if user is None:
            raise paging.PagingError(_("请选择值班人。"))
        paging.add_shift(actor=request.user, role=p.get("role", ""), user=user, weekdays="".join(p.getlist("weekdays")),
                         starts=_parse_time(p.get("starts")), ends=_parse_time(p.get("ends")), mobile=p.get("mobile", ""))
        messages.success(request, _("已添加值班。"))
    except paging.PagingError as exc:
        messages.error(request, str(exc))
    return redirect("incidents:duty")


@require_POST
@login_required
def duty_remove(request, shift_id):
    require_capability(request.user, "edit_duty_roster", what="edit duty roster")
    shift = get_object_or_404(DutyShift.objects.select_related("user"), pk=shift_id)
    paging.remove_shift(actor=request.user, shift=shift)
    messages.success(request, _("已删除值班。"))
    return redirect("incidents:duty")


@require_POST
@login_required
def robot_save(request, robot_id=None):
    require_capability(request.user, "edit_paging_robots", what="edit paging robots")
    robot = get_object_or_404(PagingRobot, pk=robot_id) if robot_id else None
    p = request.POST
    try:
        paging.save_robot(actor=request.user, robot=robot, name=p.get("name", ""), platform=p.get("platform", ""),
                          webhook_url=p.get("webhook_url", ""), secret=p.get("secret", ""),
                          roles=p.getlist("roles"), enabled=p.get("enabled") == "1")
        messages.success(request, _("群机器人已保存。"))
    except paging.PagingError as exc:
        messages.error(request, str(exc))
    return redirect("incidents:duty")


@require_POST
@login_required
def robot_test(request, robot_id):
    require_capability(request.user, "edit_paging_robots", what="test paging robot")
    robot = get_object_or_404(PagingRobot, pk=robot_id)
    result = paging.send_test(actor=request.user, robot=robot)
    if result.ok:
        messages.success(request, _("「%(name)s」测试消息已送达。") % {"name": robot.name})
    else:
        messages.error(request, _("「%(name)s」测试失败:%(err)s %(answer)s") % {
            "name": robot.name, "err": result.error, "answer": result.response[:200]})
    return redirect("incidents:duty")
