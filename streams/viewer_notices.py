"""Personal notices shown on the viewer page at load ("you received a coupon ..."). Other apps register
providers here; streams does not know them (compensation -> incidents -> streams)."""

import logging

from django.db import transaction

logger = logging.getLogger(__name__)

_providers = []


class Notice(str):
    """A notice's text with the key pages and sockets deduplicate on (one notice per key: "campaign-7"), and an
    optional link the viewer can follow (a coupon's "去使用")."""

    def __new__(cls, text, key="", link="", link_label=""):
        notice = super().__new__(cls, text)
        notice.key, notice.link, notice.link_label = key, link, link_label
        return notice


def register(fn):
    """fn(room, viewer) -> list[str | Notice]; viewer may be None for a first-time visitor."""
    if fn not in _providers:
        _providers.append(fn)
    return fn


def notices_for(room, viewer):
    """Every provider's notices, each key once (the same news from two places is shown once)."""
    notices, keys = [], set()
    for provider in list(_providers):
        try:
            with transaction.atomic():  # a savepoint: a provider's database error leaves ours usable
                found = [n if isinstance(n, Notice) else Notice(str(n)) for n in (provider(room, viewer) or [])]
        except Exception:  # noqa: BLE001 - a broken provider must not break the viewer page
            logger.exception("viewer notice provider %r failed", provider)
            continue
        for notice in found:
            key = notice.key or f"text:{notice}"
            if key not in keys:
                keys.add(key)
                notices.append(notice)
    return notices
