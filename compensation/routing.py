from django.urls import path

from . import consumers

websocket_urlpatterns = [
    path("ws/compensation/campaigns/<int:campaign_id>/", consumers.CampaignProgressConsumer.as_asgi()),
    path("ws/compensation/wall/", consumers.WallProgressConsumer.as_asgi()),
]
