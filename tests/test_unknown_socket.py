"""A websocket to a path nobody serves is closed cleanly (4404), not a 500 traceback per handshake."""

from channels.testing import WebsocketCommunicator

from controlroom.asgi import application


async def test_an_unknown_websocket_path_is_closed_with_4404():
    communicator = WebsocketCommunicator(application, "/ws/nothing-here/", headers=[(b"origin", b"http://127.0.0.1")])
    connected, code = await communicator.connect()
    assert connected is False and code == 4404
