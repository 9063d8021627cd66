"""Texts the system writes (timeline entries, generated titles) kept as a message and its parameters,
rendered in the reader's language at read time.

A message is JSON: {"id": <msgid, the Simplified Chinese source string>, "p": {name: param}}. A param is
plain text or a number (user content, figures: shown as they are), {"t": <msgid>} (a label translated at
read time), {"zh": ..., "en": ...} (seeded content that keeps both texts), or a nested message.
The Chinese rendering is also stored as plain text beside it, for search, the admin and exports.
"""

from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext, gettext_noop


# Who did it, when not a person: shown by label, never "auto" or "system".
ACTOR_LABELS = {"auto": gettext_noop("自动"), "system": gettext_noop("系统"), "mediaworker": gettext_noop("媒体处理进程"),
                "host": gettext_noop("主播")}


def actor_label(value):
    return gettext(ACTOR_LABELS[value]) if value in ACTOR_LABELS else value


def message(msgid, **params):
    return {"id": str(msgid), "p": params}


def label(msgid):
    """A translatable label given by its (untranslated) msgid, e.g. a choice's source string."""
    args = getattr(msgid, "_args", None)  # a gettext_lazy proxy carries its msgid
    return {"t": str(args[0] if args else msgid)}


def bilingual(zh, en=""):
    return {"zh": zh, "en": en or ""}


def concat(*parts):
    """Parts (messages or text) shown one after another."""
    return {"cat": [part for part in parts if part]}


def items(*parts):
    """Parts shown as a list: "、" between them in Chinese, ", " in English."""
    return {"list": [part for part in parts if part]}


def alert(kind, detail, stored):
    """An alert's body: rendered from its kind and detail (automatic alerts), else as it was written."""
    return {"alert": [kind, detail or {}, stored]}


def english_wanted():
    return (translation.get_language() or "").startswith("en")


def pick(zh, en):
    """Seeded content with an English text: the reader's language when we have it."""
    return en if en and english_wanted() else zh


def _param(value):
    if isinstance(value, dict):
        if "t" in value:
            return gettext(value["t"])
        if "zh" in value:
            return pick(value["zh"], value.get("en"))
        if "id" in value:
            return render(value)
        if "cat" in value:
            return "".join(str(_param(part)) for part in value["cat"])
        if "list" in value:
            return (", " if english_wanted() else "、").join(str(_param(part)) for part in value["list"])
        if "alert" in value:
            from streams.models import Alert

            kind, detail, stored = value["alert"]
            return Alert.describe(kind, detail) or stored
    return value


def render(msg, fallback=""):
    """The message in the active language; `fallback` when it cannot be rendered (never raises)."""
    try:
        if "id" not in msg:
            return str(_param(msg))
        params = {key: _param(value) for key, value in (msg.get("p") or {}).items()}
        text = gettext(msg["id"])
        return text % params if params else text
    except (AttributeError, KeyError, TypeError, ValueError):
        return fallback


def render_stored(msg):
    """The text stored beside the message: the site language, whoever is acting."""
    with translation.override(settings.LANGUAGE_CODE):
        return render(msg)
