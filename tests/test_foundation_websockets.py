"""Every websocket is authenticated, origin-checked and role-checked (close 4403)."""

import pytest
from channels.testing import WebsocketCommunicator
from django.test import Client

from controlroom.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)

OK_ORIGIN = (b"origin", b"http://127.0.0.1:8000")
FOREIGN_ORIGIN = (b"origin", b"https://evil.example.com")


def session_cookie(user):
    client = Client()
    client.force_login(user)
    return (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())


async def handshake(path, *headers):
    communicator = WebsocketCommunicator(application, path, headers=[(b"host", b"127.0.0.1:8000"), *headers])
    connected, code = await communicator.connect(timeout=5)
    if connected:
        await communicator.disconnect()
    return connected, code


async def test_operator_with_session_and_our_origin_is_accepted(operator):
    from asgiref.sync import sync_to_async

    cookie = await sync_to_async(session_cookie)(operator)
    connected, _ = await handshake("/ws/wall/", OK_ORIGIN, cookie)
    assert connected


async def test_handshake_without_a_session_is_refused():
    connected, code = await handshake("/ws/wall/", OK_ORIGIN)
    assert not connected
    assert code == 4403


async def test_handshake_from_a_foreign_origin_is_refused_even_with_a_session(operator):
    from asgiref.sync import sync_to_async

    cookie = await sync_to_async(session_cookie)(operator)
    connected, _ = await handshake("/ws/wall/", FOREIGN_ORIGIN, cookie)
    assert not connected


async def test_handshake_without_origin_header_is_refused(operator):
    from asgiref.sync import sync_to_async

    cookie = await sync_to_async(session_cookie)(operator)
    connected, _ = await handshake("/ws/wall/", cookie)
    assert not connected


async def test_logged_in_outsider_without_a_role_is_closed_with_4403_and_logged(outsider, caplog):
    from asgiref.sync import sync_to_async

    cookie = await sync_to_async(session_cookie)(outsider)
    connected, code = await handshake("/ws/wall/", OK_ORIGIN, cookie)
    assert not connected
    assert code == 4403
    assert any("denied: user=oscar_outsider" in r.getMessage() and "wall websocket" in r.getMessage()
               for r in caplog.records)
