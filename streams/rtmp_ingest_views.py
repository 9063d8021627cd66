"""The ingest edge's callbacks (nginx-rtmp `on_publish` / `on_publish_done`: HTTP POST forms with
call, app, name (the stream key), addr (the encoder), clientid, ...).

Only the edge may call them: loopback clients, or, when RTMP_EDGE_SECRET is set, whoever presents it in
the query string (the edge's config carries it). Cheap checks first (caller, size, fields); a per-encoder
request budget bounds key guessing. `on_publish`: 302 to `<room>.<line>` (the edge renames the stream, so
the key never travels further) when the key is good, 403 otherwise (the edge refuses the publish).
`on_publish_done`: 200 always (the edge ignores the answer). The media worker is told at once; it also
picks the change up with its next settings refresh (3 s) if it cannot be reached now.
"""

import asyncio
import hmac
import ipaddress
import logging

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt

from . import client_limits
from .mediaworker import client
from .rtmp_ingest_services import do_end_rtmp_publish, do_start_rtmp_publish

logger = logging.getLogger(__name__)

MAX_FORM_BYTES = 4096  # nginx-rtmp's forms are a few hundred bytes
MAX_FIELD = 300
RELOAD_TIMEOUT_S = 3.0


def _text(status, message):
    return HttpResponse(message + "\n", status=status, content_type="text/plain; charset=utf-8")


def _from_edge(request):
    secret = settings.RTMP_EDGE_SECRET
    if secret:
        return hmac.compare_digest(request.GET.get("secret", "").encode(), secret.encode())
    try:
        return ipaddress.ip_address(request.META.get("REMOTE_ADDR", "")).is_loopback
    except ValueError:
        return False


def _form(request):
    """(fields, None) or (None, error response): POST, small, with a short stream name."""
    if request.method != "POST":
        return None, _text(405, "POST only")
    if not _from_edge(request):
        return None, _text(403, "only the ingest edge may call this")
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = MAX_FORM_BYTES + 1
    if length > MAX_FORM_BYTES:
        return None, _text(413, "form too large")
    fields = {k: request.POST.get(k, "")[:MAX_FIELD] for k in ("name", "clientid", "addr", "app", "call")}
    if not fields["name"] or not fields["clientid"]:
        return None, _text(400, "name and clientid are required")
    return fields, None


_telling = set()  # background notifications under way (a reference keeps each task alive)


def _tell_worker_soon(slug):
    """After the answer: the edge holds the encoder's publish until we answer, so the worker (which may be
    busy or not yet leased) must not delay it. Its settings refresh is the backstop."""
    task = asyncio.ensure_future(_tell_worker(slug))
    _telling.add(task)
    task.add_done_callback(_telling.discard)


async def _tell_worker(slug):
    try:
        await client.call("reload", slug, timeout=RELOAD_TIMEOUT_S)
    except Exception as exc:  # noqa: BLE001 - the worker's settings refresh picks the change up anyway
        logger.warning("%s: telling the media worker about an RTMP publish failed (%r); it will notice on its "
                       "next settings refresh", slug, exc)


@csrf_exempt
async def on_publish(request):
    fields, error = _form(request)
    if error is not None:
        return error
    refusal = await client_limits.take_request(fields["addr"] or "edge-unknown")
    if refusal is not None:
        return _text(429, refusal.reason)
    decision = await sync_to_async(do_start_rtmp_publish)(
        key=fields["name"], client_id=fields["clientid"], addr=fields["addr"])
    if decision.refusal:
        logger.info("RTMP publish refused (%s) from %s", decision.refusal, fields["addr"])  # never the key
        return _text(403, decision.refusal)
    line = decision.line
    _tell_worker_soon(line.room.slug)
    response = HttpResponse(status=302)
    response["Location"] = line.rtmp_stream_name
    return response


@csrf_exempt
async def on_publish_done(request):
    fields, error = _form(request)
    if error is not None:
        return error
    line = await sync_to_async(do_end_rtmp_publish)(
        key=fields["name"], client_id=fields["clientid"], addr=fields["addr"])
    if line is not None:
        _tell_worker_soon(line.room.slug)
    return _text(200, "ok")
