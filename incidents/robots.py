"""Group-robot webhooks in each platform's documented format (no Django here).

- 企业微信 (WeCom) group robot: POST the webhook URL (key in its query), JSON
  {"msgtype": "markdown", "markdown": {"content": ...}}; answers {"errcode": 0, "errmsg": "ok"}.
- 钉钉 (DingTalk) custom robot with 加签: `timestamp` (ms) and `sign` query parameters, where
  sign = urlencode(base64(HMAC-SHA256(key=secret, msg="<timestamp>\\n<secret>")));
  JSON {"msgtype": "markdown", "markdown": {"title", "text"}, "at": {"atMobiles", "isAtAll"}};
  answers {"errcode": 0, "errmsg": "ok"}.
- 飞书 (Feishu/Lark) custom bot with 签名校验: `timestamp` (s) and `sign` in the JSON body, where
  sign = base64(HMAC-SHA256(key="<timestamp>\\n<secret>", msg=b"")); msg_type "interactive" (a card with
  a button); answers {"code": 0, "msg": "success"}.

A 2xx answer with a non-zero errcode/code (rate limit, bad signature, keyword filter) is a failure.
"""

import base64
import hashlib
import hmac
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field

WECOM = "wecom"
DINGTALK = "dingtalk"
FEISHU = "feishu"

MAX_RESPONSE_BYTES = 4096


@dataclass
class Message:
    """What a page says, already in the reader's words."""

    title: str
    lines: list  # plain text lines
    link_label: str
    link_url: str
    claim_label: str
    claim_url: str
    mobiles: list = field(default_factory=list)  # on-duty people to @-mention where the platform can
    urgent: bool = True


@dataclass
class Result:
    ok: bool
    http_status: int | None
    response: str
    error: str
    duration_ms: int


def dingtalk_sign(secret, timestamp_ms):
    string_to_sign = f"{timestamp_ms}\n{secret}".encode()
    digest = hmac.new(secret.encode(), string_to_sign, hashlib.sha256).digest()
    return urllib.parse.quote_plus(base64.b64encode(digest).decode())


def feishu_sign(secret, timestamp_s):
    key = f"{timestamp_s}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()


def _markdown(message, mentions=""):
    body = "\n".join(f"> {line}" for line in message.lines)
    return (f"### {message.title}\n{body}\n\n[{message.claim_label}]({message.claim_url})　"
            f"[{message.link_label}]({message.link_url}){mentions}")


def build_request(platform, url, secret, message, now=None):
    """(url, JSON body as dict) for one page to one robot."""
    now = time.time() if now is None else now
    if platform == WECOM:
        return url, {"msgtype": "markdown", "markdown": {"content": _markdown(message)}}
    if platform == DINGTALK:
        if secret:
            ts = int(now * 1000)
            sep = "&" if urllib.parse.urlsplit(url).query else "?"
            url = f"{url}{sep}timestamp={ts}&sign={dingtalk_sign(secret, ts)}"
        mentions = "".join(f" @{m}" for m in message.mobiles)
        return url, {"msgtype": "markdown",
                     "markdown": {"title": message.title, "text": _markdown(message, mentions)},
                     "at": {"atMobiles": list(message.mobiles), "isAtAll": False}}
    if platform == FEISHU:
        body = {
            "msg_type": "interactive",
            "card": {
                "config": {"wide_screen_mode": True},
                "header": {"title": {"tag": "plain_text", "content": message.title},
                           "template": "red" if message.urgent else "orange"},
                "elements": [
                    {"tag": "div", "text": {"tag": "lark_md", "content": "\n".join(message.lines)}},
                    {"tag": "action", "actions": [
                        {"tag": "button", "type": "primary", "url": message.claim_url,
                         "text": {"tag": "plain_text", "content": message.claim_label}},
                        {"tag": "button", "type": "default", "url": message.link_url,
                         "text": {"tag": "plain_text", "content": message.link_label}},
                    ]},
                ],
            },
        }
        if secret:
            ts = int(now)
            body = {"timestamp": str(ts), "sign": feishu_sign(secret, ts), **body}
        return url, body
    raise ValueError(f"unknown platform {platform!r}")


def _accepted(platform, payload):
    if not isinstance(payload, dict):
        return False
    if platform == FEISHU:
        code = payload.get("code", payload.get("StatusCode"))
        return code == 0
    return payload.get("errcode") == 0


def send(platform, url, secret, message, timeout_s):
    """POST one page; never raises for network or protocol failures (the Result says what happened)."""
    target, body = build_request(platform, url, secret, message)
    data = json.dumps(body, ensure_ascii=False).encode()
    request = urllib.request.Request(target, data=data, method="POST",
                                     headers={"Content-Type": "application/json; charset=utf-8"})
    started = time.monotonic()
    status, text, error = None, "", ""
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310 - http(s) only, checked on save
            status = response.status
            text = response.read(MAX_RESPONSE_BYTES).decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        status = exc.code
        try:
            text = exc.read(MAX_RESPONSE_BYTES).decode("utf-8", "replace")
        except OSError:
            text = ""
        error = f"HTTP {exc.code}"
    except ValueError:
        error = "invalid webhook URL"  # its message would quote the URL, which carries the key
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        error = f"{type(exc).__name__}: {reason}"[:300]
    duration_ms = int((time.monotonic() - started) * 1000)
    ok = False
    if status is not None and 200 <= status < 300:
        try:
            ok = _accepted(platform, json.loads(text or "null"))
        except ValueError:
            ok = False
        if not ok:
            error = error or "refused by the platform"
    return Result(ok=ok, http_status=status, response=text[:1000], error=error, duration_ms=duration_ms)
