from django.urls import path

from . import consumers

websocket_urlpatterns = [
    path("ws/incidents/<int:incident_id>/", consumers.IncidentConsumer.as_asgi()),
    path("ws/incidents/room/<slug:slug>/", consumers.RoomPanelConsumer.as_asgi()),
]
