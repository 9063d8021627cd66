"""The room page's RTMP push destinations card (an htmx fragment): list for everyone on duty; add, edit
and delete for ops and tech support (checked again in the services)."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_POST

from controlroom.roles import ON_DUTY, can, require_capability, require_role

from .forms import PushDestinationForm
from .models import LiveRoom, PushDestination
from .push_services import do_add_push_destination, do_delete_push_destination, do_update_push_destination


def _card(request, room, add_form=None, edit_forms=None, status=200):
    destinations = list(PushDestination.objects.filter(room=room).order_by("pk"))
    edit_forms = edit_forms or {}
    rows = [(d, edit_forms.get(d.pk) or PushDestinationForm(
        adding=False, initial={"platform": d.platform, "url": d.url, "enabled": d.enabled}, prefix=f"d{d.pk}"))
            for d in destinations]
    return render(request, "streams/push_destinations.html", {
        "room": room, "rows": rows, "can_edit": can(request.user, "edit_push_destinations"),
        "add_form": add_form or PushDestinationForm(prefix="new"),
    }, status=status)


@login_required
def push_destinations(request, slug):
    room = get_object_or_404(LiveRoom, slug=slug)
    if request.method != "POST":
        require_role(request.user, *ON_DUTY, what=f"view push destinations {slug}")
        return _card(request, room)
    require_capability(request.user, "edit_push_destinations", what=f"add push destination {slug}")
    form = PushDestinationForm(request.POST, prefix="new")
    if not form.is_valid():
        return _card(request, room, add_form=form, status=400)
    do_add_push_destination(user=request.user, room=room, **form.cleaned_data)
    return _card(request, room)


@login_required
@require_POST
def push_destination_edit(request, slug, pk):
    room = get_object_or_404(LiveRoom, slug=slug)
    dest = get_object_or_404(PushDestination, room=room, pk=pk)
    require_capability(request.user, "edit_push_destinations", what=f"edit push destination {slug}")
    form = PushDestinationForm(request.POST, adding=False, prefix=f"d{dest.pk}")
    if not form.is_valid():
        return _card(request, room, edit_forms={dest.pk: form}, status=400)
    do_update_push_destination(user=request.user, destination_id=dest.pk, **form.cleaned_data)
    return _card(request, room)


@login_required
@require_POST
def push_destination_delete(request, slug, pk):
    room = get_object_or_404(LiveRoom, slug=slug)
    dest = get_object_or_404(PushDestination, room=room, pk=pk)
    require_capability(request.user, "edit_push_destinations", what=f"delete push destination {slug}")
    do_delete_push_destination(user=request.user, destination_id=dest.pk)
    return _card(request, room)
