"""How punctual this process is: a ~10 ms ticker measures its event loop's lateness.

On a loaded host a healthy publisher's frames reach us late simply because we were not running; a gap
between frames only says something about the line for the part of it the loop was able to observe.
`observed(t0, t1)` is that part: the span minus the time the loop spent late.
"""

import asyncio
import time
from collections import deque

TICK_S = 0.01
NOISE_S = 0.002  # timer granularity: lateness below this is not a stall
KEEP_S = 10.0


class LoopMonitor:
    def __init__(self, tick_s=TICK_S):
        self.tick_s = tick_s
        self.stalls = deque()  # (ended_at, lateness_s), oldest first
        self.expected = None  # when the ticker should next run; None while not running
        self.task = None

    def start(self):
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(self._tick())
        return self

    async def stop(self):
        if self.task is not None:
            self.task.cancel()
            try:
                await self.task
            except asyncio.CancelledError:
                pass
            self.task = None
        self.expected = None

    async def _tick(self):
        self.expected = time.monotonic() + self.tick_s
        while True:
            await asyncio.sleep(self.tick_s)
            self.record(time.monotonic())

    def record(self, now):
        late = now - self.expected if self.expected is not None else 0.0
        if late > NOISE_S:
            self.stalls.append((now, late))
        while self.stalls and now - self.stalls[0][0] > KEEP_S:
            self.stalls.popleft()
        self.expected = now + self.tick_s

    def _intervals(self, now):
        """Stall intervals, newest first, including one still under way (the ticker has not run yet)."""
        if self.expected is not None and now - self.expected > NOISE_S:
            yield self.expected, now
        for ended, late in reversed(self.stalls):
            yield ended - late, ended

    def stalled_between(self, t0, t1):
        """Seconds of [t0, t1] during which the loop was late."""
        total = 0.0
        for start, end in self._intervals(t1):
            if end <= t0:
                break
            total += max(0.0, min(end, t1) - max(start, t0))
        return total

    def observed(self, t0, t1):
        """The part of [t0, t1] the loop was able to observe (never negative)."""
        if t0 is None:
            return None
        return max(0.0, (t1 - t0) - self.stalled_between(t0, t1))

    def max_lag(self, now, window=1.0):
        """The worst lateness that ended (or is still under way) within the last `window` seconds."""
        worst = 0.0
        for start, end in self._intervals(now):
            if now - end > window:
                break
            worst = max(worst, end - start)
        return worst
