"""Operator-facing media endpoints that are not WHIP/WHEP signalling."""

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404
from django.utils.html import escape
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from controlroom.roles import require_capability

from . import services
from .models import LiveRoom


@login_required
@require_POST
def demo_fault(request, slug):
    """Demo: make a simulated line misbehave (stall, black, silence, weak, none) to watch the failover.

    POST line=primary|backup, fault=..., optional seconds=N. Answers a one-line text (htmx-friendly).
    """
    require_capability(request.user, "inject_demo_fault")
    room = get_object_or_404(LiveRoom, slug=slug)
    seconds = request.POST.get("seconds") or None
    try:
        seconds = float(seconds) if seconds else None
        services.inject_demo_fault(room=room, line_role=request.POST.get("line", ""),
                                   fault=request.POST.get("fault", ""), actor=request.user, duration_s=seconds)
    except ValueError:
        return HttpResponseBadRequest(_("故障持续时间须是秒数"))
    except services.MediaCommandError as exc:
        return HttpResponseBadRequest(escape(str(exc)))
    return HttpResponse(escape(f"{room.name}: {request.POST['line']} {request.POST['fault']}"), content_type="text/plain")
