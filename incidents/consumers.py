"""Websockets: an incident page and the wall's per-room incident panel.

Authenticated users with an on-duty role only (origin is checked by the ASGI router).
Fragments arrive pre-rendered from incidents.events; each socket just forwards the string.
"""

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.utils.translation import gettext as _

from controlroom.roles import MANAGER, roles_of

from .events import ROLES, incident_group, room_panel_group


def live_on():
    return f'<span id="incident-live" class="live on" data-live="1">● {_("实时")}</span>'


class _FragmentConsumer(AsyncWebsocketConsumer):
    groups_joined = ()

    async def _roles(self):
        user = self.scope.get("user")
        return await database_sync_to_async(roles_of)(user) if user is not None else frozenset()

    async def disconnect(self, code):
        for group in self.groups_joined:
            await self.channel_layer.group_discard(group, self.channel_name)

    async def incident_fragment(self, event):
        await self.send(text_data=event["html"])

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
        await self.send(text_data=live_on())

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
