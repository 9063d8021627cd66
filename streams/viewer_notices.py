"""Personal notices shown on the viewer page at load ("you received a coupon ..."). Other apps register
providers here; streams does not know them (compensation -> incidents -> streams)."""

import logging

from django.db import transaction

logger = logging.getLogger(__name__)

_providers = []


def register(fn):
    """fn(room, viewer) -> list[str]; viewer may be None for a first-time visitor."""
    if fn not in _providers:
        _providers.append(fn)
    return fn


def notices_for(room, viewer):
    notices = []
    for provider in list(_providers):
        try:
            with transaction.atomic():  # a savepoint: a provider's database error leaves ours usable
                notices.extend(str(n) for n in (provider(room, viewer) or []))
        except Exception:  # noqa: BLE001 - a broken provider must not break the viewer page
            logger.exception("viewer notice provider %r failed", provider)
    return notices
