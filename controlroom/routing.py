"""Websocket routes of every app, in one list for the ASGI router."""

from channels.generic.websocket import WebsocketConsumer
from django.urls import re_path

from compensation.routing import websocket_urlpatterns as compensation_ws
from incidents.routing import websocket_urlpatterns as incidents_ws
from streams.routing import websocket_urlpatterns as streams_ws


class NoSuchSocket(WebsocketConsumer):
    """Any other path: refused with close code 4404 (Channels' router would log a 500 traceback per handshake)."""

    def connect(self):
        self.close(code=4404)


websocket_urlpatterns = streams_ws + incidents_ws + compensation_ws + [re_path(r"", NoSuchSocket.as_asgi())]
