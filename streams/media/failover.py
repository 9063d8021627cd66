"""The failover policy: given what each line shows, what the process can vouch for, and the clock, decide
whether the program switches, holds or reverts. Pure: no aiortc, no asyncio — the room feeds it
observations every 25 ms and carries out its decisions, and tests drive it with synthetic timelines.

Two kinds of hold, each raised once per episode with a count of the switches it refused:
- anti-flap: at most `max_auto_switches` automatic switches per `auto_switch_window_s`;
- overload: when the process itself was late (its event loop lagged, or decoded frames queue up), a
  picture that stopped or froze may be our own lateness, not the line's. The policy holds, for at most
  `overload_max_hold_s` per fault, so a line that really died is still switched within a bounded time.
"""

from dataclasses import dataclass, field

LINE_ROLES = ("primary", "backup")
# Faults that a late process can fake: no frame decoded in time / the same picture seen again.
LATENESS_TRIGGERS = ("input_loss", "frozen")


@dataclass(frozen=True)
class LineView:
    """One line as the room sees it now."""

    trigger: str | None = None  # the failover trigger the line meets now, None when healthy
    has_picture: bool = False  # connected with a decoded picture: something to switch to
    on_air_once: bool = False  # has ever delivered a frame (failover arms only after that)
    gap_ms: float | None = None  # time without a new picture, net of the process's own lateness
    publisher_gone: bool = False  # the peer connection is closed/failed: no doubt, never held for lateness
    # Healthy by the strict measure (gaps not excused by our own lateness). Recovery and revert count healthy
    # time from this: lateness may excuse a gap, but it must never make a stalled line look recovered.
    healthy: bool | None = None  # None: the same as trigger is None


@dataclass(frozen=True)
class ProcessLoad:
    """What the process can say about its own punctuality."""

    late: bool = False  # lagged past the threshold within the last second, or frames are queued for decoding
    lag_ms: float = 0.0  # worst event-loop lateness in the last second
    backlog: int = 0  # frames waiting to be decoded (all lines of the room)


@dataclass
class Decision:
    kind: str  # switch | hold | hold_ended | overload | overload_ended
    target: str | None = None
    trigger: str | None = None
    detail: dict = field(default_factory=dict)


@dataclass
class _Episode:
    started: float
    trigger: str
    refused: int = 0
    reported_refused: int = 0
    last_report: float = 0.0
    calm_since: float | None = None


class FailoverPolicy:
    def __init__(self, settings, *, overload_max_hold_s=2.0, overload_calm_s=10.0, report_every_s=30.0):
        self.settings = settings
        self.overload_max_hold_s = overload_max_hold_s
        self.overload_calm_s = overload_calm_s  # the process must be punctual this long to end an episode
        self.report_every_s = report_every_s  # ongoing episodes report their refused count at most this often
        self.healthy_since = {role: None for role in LINE_ROLES}
        self.switch_times = []
        self.flap_hold = None  # _Episode while the anti-flap hold is on
        self.overload = None  # _Episode while lateness holds the policy back
        self.suspect_since = None  # when the program line's current lateness-like fault was first held
        self.suspect_key = None
        self.last_refused_key = None

    @property
    def holding(self):
        return self.flap_hold is not None

    @property
    def overloaded(self):
        return self.overload is not None

    def healthy_for(self, role, now):
        since = self.healthy_since.get(role)
        return 0.0 if since is None else now - since

    def evaluate(self, now, source, selected_by, auto_slate, lines, load=ProcessLoad()):
        """lines: {"primary": LineView, "backup": LineView}. Returns a list of Decisions (usually empty)."""
        s = self.settings
        out = []
        for role, view in lines.items():
            if (view.trigger is None) if view.healthy is None else view.healthy:
                self.healthy_since[role] = self.healthy_since[role] if self.healthy_since[role] is not None else now
            else:
                self.healthy_since[role] = None
        self._overload_bookkeeping(now, load, out)
        if not s.auto_failover:
            return out
        if source in LINE_ROLES:
            view = lines[source]
            if not view.on_air_once:
                return out  # armed only once this line has been on air
            if view.trigger:
                if self._held_for_lateness(now, source, view, load, out):
                    return out
                other_role = "backup" if source == "primary" else "primary"
                other = lines[other_role]
                target = other_role if other.has_picture and other.trigger is None else "slate"
                detail = {"line": source}
                if view.trigger == "input_loss" and view.gap_ms is not None:
                    detail["input_gap_ms"] = round(view.gap_ms)  # how long no picture came
                if self.suspect_since is not None:
                    detail["held_for_lateness_ms"] = round((now - self.suspect_since) * 1000)
                self._switch(now, source, target, view.trigger, detail, out)
                return out
            self.suspect_since = None
            self.last_refused_key = None
            if self.flap_hold is not None:  # the program line is healthy again: a later fault may switch
                out.append(self._end(self.flap_hold, now, "hold_ended"))
                self.flap_hold = None
            if source == "backup" and selected_by == "auto" and s.revert_mode == "primary_preferred":
                if self.healthy_for("primary", now) >= s.revert_after_s and lines["primary"].has_picture:
                    self._switch(now, source, "primary", "revert", {}, out)
        elif source == "slate" and auto_slate:
            self.suspect_since = None
            for role in LINE_ROLES:
                if lines[role].has_picture and self.healthy_for(role, now) >= 1.0:
                    self._switch(now, source, role, "recovered", {}, out)
                    break
        return out

    # --- lateness ---
    def _held_for_lateness(self, now, source, view, load, out):
        if view.trigger not in LATENESS_TRIGGERS or view.publisher_gone:
            return False
        if not load.late:
            return False  # punctual now, and the gap is net of earlier lateness: the line's own fault
        if self.suspect_since is None or self.suspect_key != (source, view.trigger):
            self.suspect_since, self.suspect_key = now, (source, view.trigger)
        if now - self.suspect_since >= self.overload_max_hold_s:
            return False  # held long enough: the line is really gone, lateness or not
        self._refuse(self.overload, (source, view.trigger))
        return True

    def _overload_bookkeeping(self, now, load, out):
        """An episode starts when the process is late and ends after overload_calm_s of punctuality."""
        episode = self.overload
        if episode is None:
            if load.late:
                self.overload = _Episode(started=now, trigger=None, last_report=now)
                out.append(Decision("overload", detail={
                    "phase": "started", "lag_ms": round(load.lag_ms), "backlog": load.backlog}))
            return
        if load.late:
            episode.calm_since = None
        elif episode.calm_since is None:
            episode.calm_since = now
        if episode.calm_since is not None and now - episode.calm_since >= self.overload_calm_s:
            out.append(self._end(episode, now, "overload_ended"))
            self.overload = None
        elif now - episode.last_report >= self.report_every_s and episode.refused > episode.reported_refused:
            out.append(Decision("overload", trigger=episode.trigger, detail={
                "phase": "ongoing", "refused": episode.refused, "since_s": round(now - episode.started, 1),
                "lag_ms": round(load.lag_ms), "backlog": load.backlog}))
            episode.reported_refused, episode.last_report = episode.refused, now

    # --- switching and anti-flap ---
    def _switch(self, now, source, target, trigger, detail, out):
        s = self.settings
        self.switch_times = [t for t in self.switch_times if now - t <= s.auto_switch_window_s]
        if len(self.switch_times) >= s.max_auto_switches:
            if self.flap_hold is None:
                self.flap_hold = _Episode(started=now, trigger=trigger, last_report=now)
                out.append(Decision("hold", target=target, trigger=trigger, detail={
                    "source": source, "wanted": target, "switches_in_window": len(self.switch_times),
                    "window_s": s.auto_switch_window_s, **detail}))
            self._refuse(self.flap_hold, (source, target, trigger))
            if now - self.flap_hold.last_report >= self.report_every_s and \
                    self.flap_hold.refused > self.flap_hold.reported_refused:
                out.append(Decision("hold", target=target, trigger=trigger, detail={
                    "phase": "ongoing", "source": source, "wanted": target, "refused": self.flap_hold.refused}))
                self.flap_hold.reported_refused, self.flap_hold.last_report = self.flap_hold.refused, now
            return
        self.switch_times.append(now)
        if self.flap_hold is not None:
            out.append(self._end(self.flap_hold, now, "hold_ended"))
            self.flap_hold = None
        self.suspect_since = None
        self.last_refused_key = None
        out.append(Decision("switch", target=target, trigger=trigger, detail=detail))

    def _refuse(self, episode, key):
        """One refused attempt per distinct fault, not per 25 ms evaluation."""
        if key != self.last_refused_key:
            self.last_refused_key = key
            episode.refused += 1

    def _end(self, episode, now, kind):
        return Decision(kind, trigger=episode.trigger, detail={
            "phase": "ended", "refused": episode.refused, "duration_s": round(now - episode.started, 1)})
