"""WHIP (RFC 9725) ingest and WHEP playback endpoints: thin async views in front of the media engine.

Checks (room, line, token, SDP) happen here; the engine (in-process or in `mediaworker`) does the rest.
"""

import logging

from aiortc.sdp import candidate_from_sdp
from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import HttpResponse
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt

from controlroom.roles import ON_DUTY, has_role

from . import client_limits
from .mediaworker import client
from .media.engine import BadOffer, CommandError, OutputFull, validate_offer
from .media.sdp_check import MAX_BYTES as MAX_OFFER_BYTES
from .models import IngestLine, LiveRoom

logger = logging.getLogger(__name__)

CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, DELETE, PATCH, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Type, If-Match",
    "Access-Control-Expose-Headers": "Location, Link, ETag, Accept-Patch",
}


def _response(body="", status=200, content_type="text/plain; charset=utf-8", headers=None):
    response = HttpResponse(body, status=status, content_type=content_type)
    for key, value in {**CORS_HEADERS, **(headers or {})}.items():
        response[key] = value
    return response


def _error(status, message, headers=None):
    return _response(message + "\n", status=status, headers=headers)


def _options():
    return _response("", status=204, headers={"Accept-Post": "application/sdp", "Accept-Patch": "application/trickle-ice-sdpfrag"})


def _bearer(request):
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _line(room_slug, line_role):
    return IngestLine.objects.select_related("room").filter(room__slug=room_slug, role=line_role).first()


def _room(room_slug):
    return LiveRoom.objects.filter(slug=room_slug).first()


MAX_SDPFRAG_BYTES = 4096  # a trickle PATCH carries a few candidate lines


async def _read_offer(request, need_video):
    """The offer, checked cheaply (size, lines, m-lines, ICE and DTLS attributes) and then parsed.

    Hostile offers are refused here in the web process, in well under a millisecond per KB, before
    anything reaches the media engine."""
    if request.content_type != "application/sdp":
        return None, _error(415, "Content-Type must be application/sdp")
    if len(request.body) > MAX_OFFER_BYTES:
        return None, _error(413, f"the SDP offer is too large (at most {MAX_OFFER_BYTES} bytes)")
    try:
        sdp = request.body.decode("utf-8")
    except UnicodeDecodeError:
        return None, _error(400, "the SDP offer is not UTF-8 text")
    try:
        validate_offer(sdp, need_video=need_video)  # text checks first, in microseconds; then the parser
    except BadOffer as exc:
        return None, _error(400, str(exc))
    except Exception as exc:  # noqa: BLE001 - aiortc's parser on hostile input: a bad offer, never a 500
        logger.info("offer refused by the SDP parser: %r", exc)
        return None, _error(400, "malformed SDP offer")
    return sdp, None


async def _engine_call(op, room_slug, **kwargs):
    try:
        return await client.call(op, room_slug, **kwargs), None
    except BadOffer as exc:
        return None, _error(400, str(exc))
    except OutputFull as exc:
        return None, _error(503, str(exc), headers={"Retry-After": "10"})
    except CommandError as exc:
        return None, _error(409, str(exc))
    except (client.MediaUnavailable, TimeoutError) as exc:
        return None, _error(503, f"media worker unavailable: {exc}")
    except Exception:  # noqa: BLE001 - what the client sent made the engine fail: its fault until proven otherwise
        logger.exception("media engine failed on %s for room %s", op, room_slug)
        return None, _error(400, "the media worker could not use this request")


def _too_many(refusal):
    return _error(429, refusal.reason, headers={"Retry-After": str(refusal.retry_after)})


def _on_duty(request):
    """Staff (the wall's previews, the room page) are not anonymous: no per-client limits for them."""
    if not request.COOKIES.get(settings.SESSION_COOKIE_NAME):
        return False
    return has_role(request.user, *ON_DUTY)


async def _over_rate(request):
    """Spend one request from the client's budget; a 429 response when it has none left."""
    refusal = await client_limits.take_request(client_limits.client_address(request))
    if refusal is not None and not await sync_to_async(_on_duty)(request):
        return _too_many(refusal)
    return None


async def _still_playing(room_slug, session_id):
    """Does the engine still have this WHEP session? (An empty trickle PATCH changes nothing.)"""
    try:
        result = await client.call("patch", room_slug, kind="whep", session=session_id, sdpfrag="")
    except (client.MediaUnavailable, CommandError):
        return False  # its worker or room is gone, and the session with it
    except Exception:  # noqa: BLE001 - unknown: keep counting it (the count's TTL is the backstop)
        return True
    return bool(result.get("ok"))


def _session_id_ok(session_id):
    """Session ids are the engine's uuid4 hex: anything else is refused without asking the engine."""
    return len(session_id) == 32 and all(c in "0123456789abcdef" for c in session_id)


async def _publisher(request, room_slug, line_role):
    """(line, None) for the line's own encoder, (None, response) otherwise. The token vouches for the encoder,
    so its trickle PATCHes and reconnects are not limited like a stranger's; every refused request spends the
    client's budget, so guessing tokens or rooms is slow."""
    line = await sync_to_async(_line)(room_slug, line_role) if line_role in IngestLine.Role.values else None
    if line is not None and line.check_token(_bearer(request)):
        return line, None
    if problem := await _over_rate(request):
        return None, problem
    if line_role not in IngestLine.Role.values:
        return None, _error(404, f"unknown line {line_role!r}: use primary or backup")
    if line is None:
        return None, _error(404, f"no room {room_slug!r} with a {line_role} line")
    return None, _error(401, "missing or wrong publish token (Authorization: Bearer <token>)",
                        headers={"WWW-Authenticate": 'Bearer realm="whip"'})


@csrf_exempt
async def whip(request, room_slug, line_role):
    if request.method == "OPTIONS":
        return _options()
    if request.method != "POST":
        return _error(405, "use POST with an SDP offer", headers={"Allow": "POST, OPTIONS"})
    line, problem = await _publisher(request, room_slug, line_role)
    if problem:
        return problem
    if line.kind != IngestLine.Kind.WHIP:
        return _error(409, "this line takes RTMP: publish to the RTMP ingest address with the line's stream key")
    sdp, problem = await _read_offer(request, need_video=("vp8", "h264"))
    if problem:
        return problem
    result, problem = await _engine_call("whip", room_slug, role=line_role, sdp=sdp)
    if problem:
        return problem
    location = reverse("whip_session", args=[room_slug, line_role, result["session"]])
    return _response(result["sdp"], status=201, content_type="application/sdp", headers={"Location": location})


@csrf_exempt
async def whip_session(request, room_slug, line_role, session_id):
    if request.method == "OPTIONS":
        return _options()
    if request.method not in ("DELETE", "PATCH"):
        return _error(405, "use DELETE to end the session", headers={"Allow": "DELETE, PATCH, OPTIONS"})
    line, problem = await _publisher(request, room_slug, line_role)
    if problem:
        return problem
    if not _session_id_ok(session_id):
        return _error(404, "no such WHIP session")
    if request.method == "PATCH":
        return await _patch(request, "whip", room_slug, session_id, role=line_role)
    result, problem = await _engine_call("whip_delete", room_slug, role=line_role, session=session_id)
    if problem:
        return problem
    if not result["deleted"]:
        return _error(404, "no such WHIP session (already ended or replaced)")
    return _response("", status=200)


async def _patch(request, kind, room_slug, session_id, role=None):
    if request.content_type != "application/trickle-ice-sdpfrag":
        return _error(415, "Content-Type must be application/trickle-ice-sdpfrag")
    if len(request.body) > MAX_SDPFRAG_BYTES:
        return _error(413, f"the SDP fragment is too large (at most {MAX_SDPFRAG_BYTES} bytes)")
    sdpfrag = request.body.decode("utf-8", "replace")
    try:
        for raw in sdpfrag.splitlines():
            if raw.strip().startswith("a=candidate:"):
                candidate_from_sdp(raw.strip()[len("a=candidate:"):])
    except Exception:  # noqa: BLE001 - the engine would fail on the same line
        return _error(400, "malformed ICE candidate in the SDP fragment")
    result, problem = await _engine_call("patch", room_slug, kind=kind, session=session_id,
                                         sdpfrag=sdpfrag, role=role)
    if problem:
        return problem
    if not result["ok"]:
        return _error(404, "no such session")
    return _response("", status=204)


@csrf_exempt
async def whep(request, room_slug):
    if request.method == "OPTIONS":
        return _options()
    if request.method != "POST":
        return _error(405, "use POST with an SDP offer", headers={"Allow": "POST, OPTIONS"})
    if problem := await _over_rate(request):
        return problem
    room = await sync_to_async(_room)(room_slug)
    if room is None:
        return _error(404, f"no room {room_slug!r}")
    if room.status == LiveRoom.Status.ENDED:
        return _error(404, f"room {room_slug!r} has ended")
    sdp, problem = await _read_offer(request, need_video=("vp8",))
    if problem:
        return problem
    seat = await client_limits.hold_seat(client_limits.client_address(request), room_slug, _still_playing)
    if isinstance(seat, client_limits.Refusal):
        if not await sync_to_async(_on_duty)(request):
            return _too_many(seat)
        seat = None
    try:
        result, problem = await _engine_call("whep", room_slug, sdp=sdp)
    except BaseException:
        if seat is not None:
            await seat.give_back()
        raise
    if problem:
        if seat is not None:
            await seat.give_back()
        return problem
    if seat is not None:
        await seat.confirm(result["session"])
    location = reverse("whep_session", args=[room_slug, result["session"]])
    return _response(result["sdp"], status=201, content_type="application/sdp", headers={"Location": location})


@csrf_exempt
async def whep_session(request, room_slug, session_id):
    if request.method == "OPTIONS":
        return _options()
    if request.method not in ("DELETE", "PATCH"):
        return _error(405, "use DELETE to end the session", headers={"Allow": "DELETE, PATCH, OPTIONS"})
    if problem := await _over_rate(request):
        return problem
    if not _session_id_ok(session_id):
        return _error(404, "no such WHEP session")
    if request.method == "PATCH":
        return await _patch(request, "whep", room_slug, session_id)
    result, problem = await _engine_call("whep_delete", room_slug, session=session_id)
    if problem:
        return problem
    await client_limits.release(session_id)
    if not result["deleted"]:
        return _error(404, "no such WHEP session")
    return _response("", status=200)
