"""The audio level a line reports with its health: RMS and peak dBFS over the last ~300 ms of decoded audio,
measured from real PyAV audio frames; and the tile's meter per line."""

import math

import av
import numpy as np

from streams.media import audio_level
from streams.wall import line_view


def s16_frame(amplitude, freq=440.0, samples=960, rate=48000, start=0):
    t = (np.arange(samples) + start) / rate
    mono = (amplitude * 32767 * np.sin(2 * math.pi * freq * t)).astype(np.int16)
    stereo = np.repeat(mono, 2).reshape(1, -1)  # packed s16 stereo, as the ingest resamples to
    frame = av.AudioFrame.from_ndarray(stereo, format="s16", layout="stereo")
    frame.sample_rate = rate
    return frame


class FakeLine:  # the hook keeps its state on whatever object the ingest passes (the Line)
    pass


def test_a_full_scale_half_sine_reads_minus_nine_rms_and_minus_six_peak():
    line = FakeLine()
    for i in range(15):  # 300 ms of 20 ms frames
        audio_level.measure(line, s16_frame(0.5, start=i * 960), now=i * 0.02)
    level = audio_level.read(line, now=0.3)
    assert abs(level["peak_dbfs"] - (-6.0)) < 0.2
    assert abs(level["rms_dbfs"] - (-9.0)) < 0.3  # a sine's RMS is its peak / sqrt(2): 3 dB lower


def test_the_window_forgets_loud_audio_after_300_ms_and_reads_none_without_audio():
    line = FakeLine()
    assert audio_level.read(line, now=0.0) is None
    audio_level.measure(line, s16_frame(0.9), now=0.0)
    for i in range(1, 20):
        audio_level.measure(line, s16_frame(0.01, start=i * 960), now=i * 0.02)
    level = audio_level.read(line, now=0.38)
    assert level["peak_dbfs"] < -35  # the loud frame is older than the window
    assert audio_level.read(line, now=5.0) is None  # nothing arrived in the last 300 ms
    digital_silence = FakeLine()
    audio_level.measure(digital_silence, s16_frame(0.0), now=0.0)
    assert audio_level.read(digital_silence, now=0.0) == {"rms_dbfs": -120.0, "peak_dbfs": -120.0}


def test_the_tile_meter_shows_rms_peak_and_silence():
    view = line_view("primary", {"connected": True, "state": "ok", "audio_level": {"rms_dbfs": -30.0, "peak_dbfs": -12.0}},
                     stale=False, on_air=True)
    assert (view["audio_rms_pct"], view["audio_peak_pct"], view["audio_silent"]) == (50, 80, False)
    silent = line_view("primary", {"connected": True, "state": "degraded", "silent": True,
                                   "audio_level": {"rms_dbfs": -90.0, "peak_dbfs": -80.0}}, stale=False, on_air=True)
    assert silent["audio_silent"] and silent["audio_rms_pct"] == 0
    assert line_view("primary", {"connected": True, "silent": True, "audio_level": {"rms_dbfs": -9.0}},
                     stale=True, on_air=True)["audio_silent"] is False  # no fresh data: no verdict
