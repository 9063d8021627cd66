"""Independent tools around the RTMP push tests: a private nginx-rtmp on loopback as the stand-in
platform, and Debian's ffmpeg reading what the platform receives (colour and timestamps of every frame)."""

import asyncio
import re
import subprocess
import threading
import time
from pathlib import Path

import numpy as np

from .media_support import classify

NGINX_RTMP_MODULE = "/usr/lib/nginx/modules/ngx_rtmp_module.so"

NGINX_CONF = """load_module {module};
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log info;
events {{ worker_connections 64; }}
rtmp {{
  server {{
    listen 127.0.0.1:{port};
    application {app} {{ live on; record off; wait_key on; wait_video on; }}
  }}
}}
"""


def tools_available():
    import shutil

    return bool(shutil.which("nginx") and shutil.which("ffmpeg") and Path(NGINX_RTMP_MODULE).exists())


def skip_without_tools():
    """Skip when nginx-rtmp or ffmpeg are missing, except in CI (CI=true): there scripts/test-deps.sh installs
    them, and a missing tool must fail the run loudly rather than skip the RTMP tests silently."""
    import os

    import pytest

    ci = os.environ.get("CI", "").lower() in ("1", "true", "yes")
    return pytest.mark.skipif(not tools_available() and not ci,
                              reason="needs nginx, libnginx-mod-rtmp and ffmpeg (scripts/test-deps.sh installs them)")


class Edge:
    """The product's ingest edge (config from streams.rtmp_edge) on free loopback ports: encoders publish to
    `ingest`, the edge calls the product at `callback`, and `live` on the second port stands in for a platform."""

    def __init__(self, directory, callback, ingest_port, platform_port):
        self.dir, self.callback = Path(directory), callback
        self.ingest_port, self.platform_port = ingest_port, platform_port
        self.proc = None

    def start(self, timeout=10.0):
        import socket

        from streams import rtmp_edge

        conf = rtmp_edge.write_config(self.dir, callback=self.callback, ingest_port=self.ingest_port,
                                      platform_port=self.platform_port)
        self.proc = subprocess.Popen(["nginx", "-c", str(conf), "-p", str(self.dir)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        for port in (self.ingest_port, self.platform_port):
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                    break
                except OSError:
                    if self.proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"the edge did not start: {self.log()[-2000:]}")
                    time.sleep(0.1)
        return self

    def log(self):
        path = self.dir / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def ingest_url(self, key):
        return f"rtmp://127.0.0.1:{self.ingest_port}/ingest/{key}"

    def pull_base(self):
        return f"rtmp://127.0.0.1:{self.ingest_port}/ingest"

    def platform_base(self):
        return f"rtmp://127.0.0.1:{self.platform_port}/live"

    def publishes(self, name):
        """How many times a publisher started publishing `name` (one = the connection never dropped)."""
        return len(re.findall(rf"publish: name='{re.escape(name)}'", self.log()))

    def stop(self):
        NginxRtmp.stop(self)


class FfmpegEncoder:
    """Debian's ffmpeg as an encoder pushing RTMP: a solid colour with light temporal noise (a live picture,
    never "frozen") and a sine tone, in real time (-re), H.264 + AAC in FLV, a keyframe every second."""

    def __init__(self, url, rgb_hex, tone=440, size="320x240", fps=30):
        self.url, self.rgb_hex, self.tone, self.size, self.fps = url, rgb_hex, tone, size, fps
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-re",
             "-f", "lavfi", "-i", f"color=c=0x{self.rgb_hex}:s={self.size}:r={self.fps},noise=alls=12:allf=t",
             "-f", "lavfi", "-i", f"sine=frequency={self.tone}:sample_rate=48000",
             "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", str(self.fps),
             "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "64k", "-f", "flv", self.url],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        return self

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def wait(self, timeout):
        """Its exit code (None if still running after `timeout`)."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self):
        """The encoder dies (SIGKILL: no goodbye to the edge)."""
        if self.running():
            self.proc.kill()
            self.proc.wait(5)

    def stop(self):
        if self.running():
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.kill()


class NginxRtmp:
    """`nginx -c <conf> -p <dir>` with one live application; its error log (info) records each publish."""

    def __init__(self, directory, port, app="live"):
        self.dir, self.port, self.app = Path(directory), port, app
        self.proc = None

    def start(self, timeout=10.0):
        import socket

        conf = self.dir / "nginx.conf"
        conf.write_text(NGINX_CONF.format(module=NGINX_RTMP_MODULE, dir=self.dir, port=self.port, app=self.app))
        self.proc = subprocess.Popen(["nginx", "-c", str(conf), "-p", str(self.dir)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"nginx exited: {(self.dir / 'error.log').read_text()[-2000:]}")
                time.sleep(0.1)
        raise RuntimeError("nginx-rtmp did not start listening")

    def url(self, key):
        return f"rtmp://127.0.0.1:{self.port}/{self.app}/{key}"

    def publishes(self, key):
        """How many times a publisher started publishing `key` (one = the connection never dropped)."""
        log = (self.dir / "error.log").read_text(errors="replace")
        return len(re.findall(rf"publish: name='{re.escape(key)}'", log))

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


W, H = 8, 6  # the reader scales every frame to this and classifies its centre

VIDEO_INFO = re.compile(r"Parsed_showinfo.*? n:\s*(\d+) pts:\s*(-?\d+) pts_time:(-?[\d.]+)")
AUDIO_INFO = re.compile(r"Parsed_ashowinfo.*? n:\s*(\d+) pts:\s*(-?\d+) pts_time:(-?[\d.]+).*?nb_samples:(\d+)")


class PlatformReader:
    """One ffmpeg process playing the stand-in platform's stream for the whole test: every video frame's
    colour and timestamp, every audio frame's timestamp and length."""

    def __init__(self, url):
        self.url = url
        self.frames = []  # (arrived monotonic, colour)
        self.video_ts = []  # pts_time of each video frame
        self.audio = []  # (pts_time, nb_samples)
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "info", "-rw_timeout", "15000000", "-i", self.url,
             "-map", "0:v", "-vf", f"scale={W}:{H},showinfo", "-fps_mode", "passthrough",
             "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1",
             "-map", "0:a", "-af", "ashowinfo", "-f", "null", "-"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        threading.Thread(target=self._read_frames, daemon=True).start()
        threading.Thread(target=self._read_log, daemon=True).start()
        return self

    def _read_frames(self):
        size = W * H * 3
        while True:
            data = self.proc.stdout.read(size)
            if len(data) < size:
                return
            img = np.frombuffer(data, np.uint8).reshape(H, W, 3)
            centre = img[H // 2 - 1:H // 2 + 1, W // 2 - 2:W // 2 + 2].reshape(-1, 3).mean(axis=0)
            self.frames.append((time.monotonic(), classify(tuple(centre))))

    def _read_log(self):
        for raw in self.proc.stderr:
            line = raw.decode(errors="replace")
            m = VIDEO_INFO.search(line)
            if m:
                self.video_ts.append(float(m.group(3)))
                continue
            m = AUDIO_INFO.search(line)
            if m:
                self.audio.append((float(m.group(3)), int(m.group(4))))

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    async def wait_for(self, colour, since, timeout):
        """(async: the media engine under test runs on the same event loop)"""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(t >= since and c == colour for t, c in self.frames[-200:]):
                return True
            await asyncio.sleep(0.05)
        recent = [c for t, c in self.frames if t >= since]
        raise AssertionError(f"the platform did not show {colour} within {timeout} s; saw {recent[-20:]}")

    def stop(self):
        if self.running():
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
