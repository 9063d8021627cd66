"""A stand-in for the chat platforms' webhook endpoints: plain http.server on loopback, in a thread.

It checks what each platform's documentation asks for with its own implementation of the signatures
(written from the docs, not imported from incidents.robots), records every request, and answers like
the platform: {"errcode": 0} (WeCom, DingTalk) or {"code": 0} (Feishu); a queued status (e.g. 500)
answers the next request instead.
"""

import base64
import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass
class Received:
    platform: str
    path: str
    query: dict
    body: dict
    signature_ok: bool | None  # None: the platform was not signing
    problems: list = field(default_factory=list)
    at: float = 0.0


def dingtalk_expected_sign(secret, timestamp):
    # 把 timestamp+"\n"+密钥 当做签名字符串,使用 HmacSHA256 算法计算签名(密钥为 key),Base64 编码。
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}\n{secret}".encode("utf-8"), hashlib.sha256)
    return base64.b64encode(mac.digest()).decode("ascii")


def feishu_expected_sign(secret, timestamp):
    # timestamp + "\n" + 密钥 当做签名字符串(作为 HmacSHA256 的 key),对空数据计算,Base64 编码。
    mac = hmac.new(f"{timestamp}\n{secret}".encode("utf-8"), b"", hashlib.sha256)
    return base64.b64encode(mac.digest()).decode("ascii")


class RobotReceiver:
    """Paths: /wecom?key=<key>, /dingtalk?access_token=<t>, /feishu/<hook>."""

    def __init__(self, secrets=None, wecom_key="wecom-key-123"):
        self.secrets = secrets or {}
        self.wecom_key = wecom_key
        self.received = []
        self.planned = []  # statuses to answer next, in order
        self.lock = threading.Lock()
        self.arrived = threading.Condition(self.lock)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                status, payload = receiver.handle(self.path, self.headers, raw)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base(self):
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def handle(self, path, headers, raw):
        parts = urlsplit(path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        problems = []
        try:
            body = json.loads(raw.decode("utf-8"))
        except ValueError:
            body = {}
            problems.append("body is not JSON")
        if not headers.get("Content-Type", "").startswith("application/json"):
            problems.append("content type is not JSON")
        platform = parts.path.strip("/").split("/")[0]
        signature_ok = None
        now = time.time()
        if platform == "wecom":
            if query.get("key") != self.wecom_key:
                problems.append("wrong key")
            if body.get("msgtype") != "markdown" or not isinstance(body.get("markdown", {}).get("content"), str):
                problems.append("not a markdown message")
        elif platform == "dingtalk":
            secret = self.secrets.get("dingtalk")
            if secret:
                ts = query.get("timestamp", "")
                signature_ok = (ts.isdigit() and abs(int(ts) / 1000 - now) < 3600
                                and hmac.compare_digest(query.get("sign", ""), dingtalk_expected_sign(secret, ts)))
            md = body.get("markdown", {})
            if body.get("msgtype") != "markdown" or not md.get("title") or not md.get("text"):
                problems.append("not a markdown message")
            if not isinstance(body.get("at", {}).get("atMobiles", []), list):
                problems.append("at.atMobiles is not a list")
        elif platform == "feishu":
            secret = self.secrets.get("feishu")
            if secret:
                ts = str(body.get("timestamp", ""))
                signature_ok = (ts.isdigit() and abs(int(ts) - now) < 3600
                                and hmac.compare_digest(str(body.get("sign", "")), feishu_expected_sign(secret, ts)))
            card = body.get("card", {})
            if body.get("msg_type") != "interactive" or not card.get("header", {}).get("title", {}).get("content"):
                problems.append("not an interactive card")
        else:
            problems.append(f"unknown path {path}")
        item = Received(platform=platform, path=parts.path, query=query, body=body, signature_ok=signature_ok,
                        problems=problems, at=now)
        with self.arrived:
            self.received.append(item)
            self.arrived.notify_all()
            planned = self.planned.pop(0) if self.planned else None
        if planned is not None:
            return planned, {"errcode": -1, "errmsg": "planned failure"}
        if problems or signature_ok is False:
            # what the platforms answer: 200 with an error code
            if platform == "feishu":
                return 200, {"code": 19021, "msg": "sign match fail or timestamp is not within one hour"}
            return 200, {"errcode": 310000, "errmsg": "sign not match"}
        if platform == "feishu":
            return 200, {"code": 0, "msg": "success", "data": {}}
        return 200, {"errcode": 0, "errmsg": "ok"}

    def wait_for(self, count, timeout=10.0):
        deadline = time.monotonic() + timeout
        with self.arrived:
            while len(self.received) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"expected {count} requests, got {len(self.received)}")
                self.arrived.wait(remaining)
            return list(self.received)
