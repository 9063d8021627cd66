"""Garbage-collector settings for the web process, which holds thousands of sockets.

With Python's default thresholds (700, 10, 10), a web process holding 10,000 viewer sockets ran a
full (generation 2) collection every 1-3 s. Each one walked every socket's objects and stopped the
process for 0.5-1.3 s, so an announcement fan-out that normally takes 0.8 s sometimes took 2 s
(bench/wall_bench.py, docs/benchmarks/wall.md). The default thresholds here (7000, 10, 1000) keep
young collections short (none over 100 ms in that benchmark), and a full collection waits for about
70 million net allocations instead of 70,000. A slow collection is still logged. The objects built at
start-up (Django, the URLconf, templates) live as long as the process, so they are frozen once and no
later collection walks them.
"""

import gc
import logging
import time

logger = logging.getLogger(__name__)

_watch = {"started": 0.0, "warn_ms": 100}


def parse_thresholds(raw):
    """"7000,10,1000" -> (7000, 10, 1000); "python" or "" -> None (keep the interpreter's defaults)."""
    raw = (raw or "").strip().lower()
    if raw in ("", "python", "default"):
        return None
    try:
        values = tuple(int(part) for part in raw.split(","))
    except ValueError:
        raise ValueError(f"not three comma-separated integers: {raw!r}") from None
    if len(values) != 3 or values[0] < 1 or min(values) < 0:
        raise ValueError(f"expected three integers, the first at least 1: {raw!r}")
    return values


def tune_for_many_sockets(thresholds, pause_warning_ms):
    """Call once, after the application is built (the ASGI module does)."""
    if thresholds:
        gc.set_threshold(*thresholds)
    gc.collect()
    gc.freeze()  # start-up objects: never garbage, never scanned again
    watch_pauses(pause_warning_ms)


def watch_pauses(warn_ms):
    """Log every collection slower than warn_ms: a paused process delays every socket it serves."""
    _watch["warn_ms"] = warn_ms
    if _on_collection not in gc.callbacks:
        gc.callbacks.append(_on_collection)


def unwatch_pauses():
    if _on_collection in gc.callbacks:
        gc.callbacks.remove(_on_collection)


def _on_collection(phase, info):
    if phase == "start":
        _watch["started"] = time.perf_counter()
        return
    took_ms = (time.perf_counter() - _watch["started"]) * 1000
    if took_ms >= _watch["warn_ms"]:
        logger.warning("gc pause: generation %d collection took %.0f ms (%d objects collected)",
                       info["generation"], took_ms, info["collected"])
