"""Live progress bars. The fragment is rendered once per change by the sender (services.push_progress)
and this consumer forwards the string; on connect it sends the current state so a late tab is in step."""

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from controlroom.roles import ON_DUTY, allows

from . import selectors, services
from .models import Campaign


class CampaignProgressConsumer(AsyncWebsocketConsumer):
    async def connect(self):
        user = self.scope.get("user")
        if not await database_sync_to_async(allows)(user, *ON_DUTY, what="compensation websocket"):
            await self.close(code=4403)
            return
        self.campaign_id = self.scope["url_route"]["kwargs"]["campaign_id"]
        self.group = services.campaign_group(self.campaign_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        html = await database_sync_to_async(self._snapshot)()
        if html:
            await self.send(text_data=html)

    def _snapshot(self):
        campaign = Campaign.objects.select_related("room").filter(pk=self.campaign_id).first()
        return services.render_progress(campaign)[0] if campaign else ""

    async def disconnect(self, code):
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def campaign_progress(self, event):
        await self.send(text_data=event["html"])


class WallProgressConsumer(AsyncWebsocketConsumer):
    """Compact bars of campaigns being issued, for the wall."""

    async def connect(self):
        user = self.scope.get("user")
        if not await database_sync_to_async(allows)(user, *ON_DUTY, what="compensation websocket"):
            await self.close(code=4403)
            return
        self.group = services.WALL_PROGRESS_GROUP
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        for html in await database_sync_to_async(self._snapshot)():
            await self.send(text_data=html)

    def _snapshot(self):
        return [services.render_progress(c)[1] for c in selectors.active_campaigns()]

    async def disconnect(self, code):
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def campaign_progress(self, event):
        await self.send(text_data=event["html"])
