"""Identified viewers: the platform vouches for who is watching.

Anonymous cookie viewers may watch and chat; only identified viewers (of the room's merchant) count
for compensation and draws by default. Two routes identify a viewer:
- a platform-signed token on the viewer page: `/live/<room>?vt=<token>` (format in docs/integrators.md);
- an audience imported from the platform (compensation.services.import_audience), which creates the
  same identified Viewer rows through `identified_viewer`.

Token: "<platform user id>.<expiry unix seconds>.<hex HMAC-SHA256(merchant key, '<uid>.<expiry>')>".
"""

import hashlib
import hmac
import re
import secrets
import time
import uuid

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from .models import Viewer, ViewerTokenKey

PLATFORM_USER_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class TokenError(ValueError):
    """A viewer token that cannot be accepted; the message is safe to show."""


def create_key(merchant):
    """A new signing key for `merchant` (replaces the old one); returned once to hand to the platform."""
    key = secrets.token_hex(32)
    ViewerTokenKey.objects.update_or_create(merchant=merchant, defaults={"key": key, "is_active": True,
                                                                         "created_at": timezone.now()})
    return key


def sign(key, platform_user_id, expires_at):
    """What the platform does (also used by tests and docs): a token for one user until `expires_at`."""
    payload = f"{platform_user_id}.{int(expires_at)}"
    return payload + "." + hmac.new(key.encode(), payload.encode(), hashlib.sha256).hexdigest()


def verify(merchant, token, now=None):
    """The platform user id inside a valid, unexpired token signed with `merchant`'s key; else TokenError."""
    now = time.time() if now is None else now
    if not isinstance(token, str) or len(token) > 200 or token.count(".") != 2:
        raise TokenError("malformed")
    uid, expiry, signature = token.split(".")
    if not PLATFORM_USER_ID_RE.match(uid) or not expiry.isascii() or not expiry.isdigit() or len(expiry) > 12:
        raise TokenError("malformed")
    key = ViewerTokenKey.objects.filter(merchant=merchant, is_active=True).values_list("key", flat=True).first()
    if key is None:
        raise TokenError("no_key")
    expected = hmac.new(key.encode(), f"{uid}.{expiry}".encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature):
        raise TokenError("bad_signature")
    expires = int(expiry)
    if expires <= now:
        raise TokenError("expired")
    if expires > now + settings.VIEWER_TOKEN_MAX_TTL_S:
        raise TokenError("too_long_lived")
    return uid


def identified_viewer(merchant, platform_user_id):
    """The Viewer row of a platform user of `merchant`, created on first sight (race-safe)."""
    if not PLATFORM_USER_ID_RE.match(platform_user_id or ""):
        raise TokenError("malformed")
    viewer = Viewer.objects.filter(platform_merchant=merchant, platform_user_id=platform_user_id).first()
    if viewer is not None:
        return viewer
    try:
        with transaction.atomic():
            # The device id is random: it is the cookie of this identity, so it must not be guessable.
            return Viewer.objects.create(platform_merchant=merchant, platform_user_id=platform_user_id,
                                         device_id=uuid.uuid4().hex, identified_at=timezone.now())
    except IntegrityError:
        return Viewer.objects.get(platform_merchant=merchant, platform_user_id=platform_user_id)


def identified_viewers(merchant, platform_user_ids):
    """{platform user id: Viewer pk} for many users of `merchant` at once (audience imports), creating the
    missing rows in bulk (ON CONFLICT DO NOTHING, so concurrent imports and token sign-ins agree)."""
    uids = sorted(set(platform_user_ids))
    if any(not PLATFORM_USER_ID_RE.match(uid) for uid in uids):
        raise TokenError("malformed")
    now = timezone.now()
    ids = {}
    for i in range(0, len(uids), 5000):
        chunk = uids[i:i + 5000]
        Viewer.objects.bulk_create([Viewer(platform_merchant=merchant, platform_user_id=uid, device_id=uuid.uuid4().hex,
                                           identified_at=now) for uid in chunk], ignore_conflicts=True)
        ids.update(Viewer.objects.filter(platform_merchant=merchant, platform_user_id__in=chunk)
                   .values_list("platform_user_id", "pk"))
    return ids
