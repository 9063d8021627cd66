from django.urls import path

from . import consumers, viewer_consumers

websocket_urlpatterns = [
    path("ws/wall/", consumers.WallConsumer.as_asgi()),
    path("ws/wall/<slug:slug>/", consumers.WallConsumer.as_asgi()),  # a room page: that room's updates only
    path("ws/alerts/", consumers.AlertFeedConsumer.as_asgi()),  # the alert sidebar of pages without a wall
    path("ws/cue/<slug:slug>/", consumers.CueConsumer.as_asgi()),
    path("ws/live/<slug:slug>/", viewer_consumers.ViewerConsumer.as_asgi()),
    path("ws/rooms/<slug:slug>/announcements/", viewer_consumers.AnnouncementFeedConsumer.as_asgi()),
]
