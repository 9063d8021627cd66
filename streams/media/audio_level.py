"""A line's audio level for the wall's meters: RMS and peak dBFS over the last ~300 ms of decoded audio.

Cheap enough for every frame: one numpy pass over a 20 ms frame's samples (1,920 int16 values at 48 kHz
stereo), a few microseconds; the window keeps a sum of squares, a sample count and a peak per frame, and
is read once a second with the line's health. Kept on the Line object so the ingest code needs only a hook.
"""

import math
from collections import deque

import numpy as np

WINDOW_S = 0.3
FLOOR_DBFS = -120.0
FULL_SCALE = 32768.0  # s16 samples (the ingest resamples to s16)


def dbfs(amplitude):
    return FLOOR_DBFS if amplitude <= 0 else max(FLOOR_DBFS, 20 * math.log10(amplitude / FULL_SCALE))


class AudioLevel:
    def __init__(self, window_s=WINDOW_S):
        self.window_s = window_s
        self.parts = deque()  # (monotonic time, sum of squares, samples, peak |sample|)

    def add(self, samples, now):
        x = np.asarray(samples, dtype=np.float32).ravel()
        if x.size:
            self.parts.append((now, float(np.dot(x, x)), x.size, float(np.abs(x).max())))
        self._trim(now)

    def _trim(self, now):
        while self.parts and now - self.parts[0][0] > self.window_s:
            self.parts.popleft()

    def read(self, now):
        """{"rms_dbfs", "peak_dbfs"} over the window, or None if no audio arrived in it."""
        self._trim(now)
        if not self.parts:
            return None
        total = sum(p[1] for p in self.parts)
        count = sum(p[2] for p in self.parts)
        return {"rms_dbfs": round(dbfs(math.sqrt(total / count)), 1),
                "peak_dbfs": round(dbfs(max(p[3] for p in self.parts)), 1)}


def measure(line, frame, now):
    """Hook for each decoded (s16) audio frame of a line."""
    level = line.__dict__.get("audio_level")
    if level is None:
        level = line.__dict__["audio_level"] = AudioLevel()
    level.add(frame.to_ndarray(), now)


def read(line, now):
    """Hook for the line's health: its level now (None before any audio, or after ~300 ms without)."""
    level = line.__dict__.get("audio_level")
    return None if level is None else level.read(now)
