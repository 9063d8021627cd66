"""Websocket routes of every app, in one list for the ASGI router."""

from compensation.routing import websocket_urlpatterns as compensation_ws
from incidents.routing import websocket_urlpatterns as incidents_ws
from streams.routing import websocket_urlpatterns as streams_ws

websocket_urlpatterns = streams_ws + incidents_ws + compensation_ws
