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
