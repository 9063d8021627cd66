"""Fragments compensation places on streams' pages through streams.hooks (streams never imports us)."""

from django.urls import reverse

from controlroom.roles import ON_DUTY, has_role


def viewer_offers_panel(room, request):
    """The viewer page's red packet / lucky bag buttons. Always placed: an offer can open while the page is up."""
    return reverse("compensation:viewer_offers", args=[room.slug])


def wall_progress_panel(user):
    """Progress bars of campaigns being issued, for those who may see them (same gate as the fragment)."""
    return reverse("compensation:wall") if has_role(user, *ON_DUTY) else None
