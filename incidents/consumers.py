"""Websockets: an incident page and the wall's per-room incident panel.

Authenticated users with an on-duty role only (origin is checked by the ASGI router).
Fragments arrive pre-rendered from incidents.events; each socket just forwards the string.
"""

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext as _

from controlroom.roles import MANAGER, roles_of

from .events import ROLES, incident_group, room_panel_group


def live_on(language):
    with translation.override(language):
        return f'<span id="incident-live" class="live on" data-live="1">● {_("实时")}</span>'


def language_of(scope):
    """The reader's language as the page chose it: the language cookie, else Accept-Language."""
    from django.utils.translation import trans_real

    supported = dict(settings.LANGUAGES)
    code = (scope.get("cookies") or {}).get(settings.LANGUAGE_COOKIE_NAME)
    if code in supported:
        return code
    headers = dict(scope.get("headers") or ())
    for accepted, _q in trans_real.parse_accept_lang_header(headers.get(b"accept-language", b"").decode("latin-1")):
        try:
            return translation.get_supported_language_variant(accepted)
        except LookupError:
            continue
    return settings.LANGUAGE_CODE


class _FragmentConsumer(AsyncWebsocketConsumer):
    groups_joined = ()

    @property
    def language(self):
        return language_of(self.scope)

    async def _roles(self):
        user = self.scope.get("user")
        return await database_sync_to_async(roles_of)(user) if user is not None else frozenset()

    async def disconnect(self, code):
        for group in self.groups_joined:
            await self.channel_layer.group_discard(group, self.channel_name)

    async def incident_fragment(self, event):
        await self.send(text_data=(event.get("by_lang") or {}).get(self.language, event["html"]))

    async def receive(self, text_data=None, bytes_data=None):
        """Read-only sockets: actions go through the HTTP endpoints (CSRF, audit)."""


class IncidentConsumer(_FragmentConsumer):
    async def connect(self):
        held = await self._roles()
        if not held:
            await self.close(code=4403)
            return
        incident_id = int(self.scope["url_route"]["kwargs"]["incident_id"])
        exists = await database_sync_to_async(self._exists)(incident_id)
        if not exists:
            await self.close(code=4404)
            return
        roles = ROLES if MANAGER in held else [r for r in ROLES if r in held]
        self.groups_joined = [incident_group(incident_id)] + [incident_group(incident_id, r) for r in roles]
        for group in self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()
        # Joined every group: from now on nothing is missed. Tell the page (live indicator).
        await self.send(text_data=live_on(self.language))

    @staticmethod
    def _exists(incident_id):
        from .models import Incident

        return Incident.objects.filter(pk=incident_id).exists()


class RoomPanelConsumer(_FragmentConsumer):
    async def connect(self):
        held = await self._roles()
        if not held:
            await self.close(code=4403)
            return
        slug = self.scope["url_route"]["kwargs"]["slug"]
        roles = [r for r in ROLES if r in held] or (list(ROLES[:1]) if MANAGER in held else [])
        self.groups_joined = [room_panel_group(slug, r) for r in roles]
        for group in self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()
