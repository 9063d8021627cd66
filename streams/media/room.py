"""One room: its two lines, the program source, the program output, failover and health."""

import asyncio
import logging
import time
import uuid
from collections import deque
from dataclasses import dataclass, field

from aiortc import RTCRtpSender, RTCSessionDescription
from aiortc.sdp import candidate_from_sdp

from .. import cadence
from . import ice
from .failover import FailoverPolicy, LineView, ProcessLoad
from .load import LoopMonitor
from .common import AUDIO_RATE, AUDIO_SAMPLES, LINE_ROLES, SOURCES, BadOffer, CommandError, OutputFull
from .ingest import Line
from .offers import validate_offer
from .rtmp_ingest import RtmpPull
from .rtmp_push import ProgramPush, PushProfile
from .output import ProgramOutput, SlateSource, StockViewerTrack, ViewerTrack, encode_thumbnail, silence_frame

logger = logging.getLogger(__name__)

PC_CLOSE_WAIT_S = 1.0  # closing peer connections at shutdown
BACKGROUND_WAIT_S = 0.5  # audit/health writes already under way at shutdown


async def bounded(coros, timeout, what):
    """Run these together; give up waiting after `timeout` (logged), never raise."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    if not tasks:
        return
    done, pending = await asyncio.wait(tasks, timeout=timeout)
    for task in done:
        if not task.cancelled() and task.exception() is not None:
            logger.warning("%s: %r", what, task.exception())
    if pending:
        logger.warning("%s: %d still pending after %.1f s", what, len(pending), timeout)


@dataclass
class PendingAck:
    target: str
    started: float
    future: asyncio.Future
    extra: dict = field(default_factory=dict)


class RoomEngine:
    """One room: lines, program source, program output, failover, health."""

    def __init__(self, slug, settings, config, hooks, monitor=None):
        self.slug = slug
        # the process's punctuality (shared by every room); a monitor that never runs counts no lateness
        self.monitor = monitor or LoopMonitor()
        self.settings = settings
        self.config = config
        self.hooks = hooks
        self.lines = {role: Line(self, role) for role in LINE_ROLES}
        self.source = settings.program_source if settings.program_source in SOURCES else "primary"
        self.source_before_slate = settings.source_before_slate
        self.selected_by = "initial"
        self.auto_slate = False
        self.output = ProgramOutput(self, config)
        self.viewers = {}  # session id -> (pc, tracks)
        self.pending = []
        self.frame_arrived = asyncio.Event()
        self.policy = FailoverPolicy(settings, overload_max_hold_s=config.overload_max_hold_s)
        self.load = ProcessLoad()
        self.slate = self._load_slate()
        self.last_origin = None
        self.last_frame = None
        self.tasks = []
        self.running = False
        self.health_snapshot = None
        self.thumbnail_at = -1e9
        self.samples = deque(maxlen=10)
        self.background = set()
        self.watchdogs = set()  # handshake timers of peers not yet connected
        self.pulls_lock = asyncio.Lock()
        self.push = ProgramPush(slug, PushProfile(
            width=config.push_width, height=config.push_height, fps=config.fps,
            video_bitrate=config.push_video_bitrate, audio_bitrate=config.push_audio_bitrate,
            keyframe_interval_s=config.keyframe_interval_s))

    def _load_slate(self):
        s = self.settings
        return SlateSource(s.slate_path, s.slate_kind, self.config.width, self.config.height, s.slate_has_audio)

    def start(self):
        self.running = True
        loop = asyncio.get_running_loop()
        loops = (self._video_pump(), self._audio_pump(), self._monitor(), self._health_beat())
        self.tasks = [loop.create_task(c) for c in loops]
        self.push.apply(self.settings.destinations)
        self.spawn(self.apply_rtmp_pulls(self.settings.rtmp_pulls))

    async def stop(self):
        self.running = False
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
        for task in list(self.watchdogs):
            task.cancel()
        # every peer connection at once, each wait bounded: a stuck close must not hold the shutdown
        closing = []
        for pc, tracks in list(self.viewers.values()):
            for t in tracks:
                t.stop()
            closing.append(pc.close())
        self.viewers.clear()
        for line in self.lines.values():
            closing.append(line.detach("room stopped"))
            for task in list(line.tasks):
                task.cancel()
        await bounded(closing, PC_CLOSE_WAIT_S, f"{self.slug}: closing peer connections")
        for ack in self.pending:
            if not ack.future.done():
                ack.future.set_exception(CommandError("room stopped"))
        await asyncio.get_running_loop().run_in_executor(None, self.push.stop)
        self.slate.close()
        # let audit/health writes already under way finish (bounded)
        if self.background:
            await asyncio.wait(list(self.background), timeout=BACKGROUND_WAIT_S)

    def counts(self):
        """WHEP viewers whose ICE+DTLS completed, and those still handshaking (they hold a slot until reaped)."""
        connected = sum(1 for pc, _ in self.viewers.values() if pc.connectionState == "connected")
        return {"viewers_connected": connected, "viewers_pending": len(self.viewers) - connected}

    def reap_unless_connected(self, pc, what, on_timeout):
        """A peer whose ICE+DTLS has not completed within handshake_timeout_s is closed (a half-open
        session must not hold a viewer slot or a line)."""
        async def watch():
            await asyncio.sleep(self.config.handshake_timeout_s)
            if pc.connectionState != "connected":
                logger.info("%s: %s did not connect within %.1f s; closed", self.slug, what,
                            self.config.handshake_timeout_s)
                await on_timeout()

        task = asyncio.ensure_future(watch())
        self.watchdogs.add(task)
        task.add_done_callback(self.watchdogs.discard)

    def spawn(self, coro):
        task = asyncio.ensure_future(coro)
        self.background.add(task)
        task.add_done_callback(self.background.discard)
        return task

    def video_arrived(self, role):
        if role == self.source:
            self.frame_arrived.set()

    # --- the program pumps ---
    async def _video_pump(self):
        loop = asyncio.get_running_loop()
        interval = 1.0 / self.config.fps
        repeat_after = max(0.05, 1.5 / self.config.fps)
        last_emit = 0.0
        last_seq = {role: -1 for role in LINE_ROLES}
        while self.running:
            try:
                source = self.source
                line = self.lines.get(source)
                frame, origin = None, source
                if line is not None and line.latest is not None:
                    if line.seq == last_seq[source]:
                        self.frame_arrived.clear()
                        wait = max(0.0, last_emit + repeat_after - time.monotonic())
                        try:
                            await asyncio.wait_for(self.frame_arrived.wait(), wait)
                        except asyncio.TimeoutError:
                            pass
                        if self.source != source:
                            continue
                    # cap at the output frame rate (keep taking the newest frame); a pending switch goes at once
                    gap = last_emit + interval * 0.9 - time.monotonic()
                    if gap > 0 and not self._switch_pending(source):
                        await asyncio.sleep(gap)
                        if self.source != source:
                            continue
                    frame = line.latest
                    if line.seq == last_seq[source]:
                        origin = source + ":repeat"
                    last_seq[source] = line.seq
                else:
                    gap = last_emit + interval - time.monotonic()
                    if gap > 0 and not self._switch_pending(source):
                        await asyncio.sleep(gap)
                        if self.source != source:
                            continue
                    if source != "slate":
                        origin = "filler"  # selected line has no picture yet: show the slate, keep the source
                    frame = self.slate.video_frame()
                now = time.monotonic()
                if self.output.video_subs or self.output.raw_subs:
                    pts = self.output.next_video_pts()
                    force = self.output._want_keyframe(now)
                    if force:
                        self.output.key_wanted = False
                        self.output.last_key_at = now
                    packets, encoded = await loop.run_in_executor(None, self.output.encode_video, frame, pts, force)
                    now = time.monotonic()
                    self.output.publish_video(packets, pts, now)
                    for track in list(self.output.raw_subs):
                        track.offer_frame(encoded)
                # else: nobody is watching: the frame is on program, but encoding it would only burn CPU
                self.push.offer_video(frame, origin)
                last_emit = now
                self.last_origin = origin
                self._resolve_acks(origin, now)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("%s: video pump iteration failed", self.slug)
                await asyncio.sleep(0.1)

    def _switch_pending(self, source):
        return any(ack.target == source and not ack.future.done() for ack in self.pending)

    def _resolve_acks(self, origin, now):
        if not self.pending:
            return
        remaining = []
        source, _, repeat = origin.partition(":")
        for ack in self.pending:
            if ack.target == source and not ack.future.done():
                ack.future.set_result({
                    "first_frame_at": time.time(),
                    "latency_ms": round((now - ack.started) * 1000.0, 1),
                    # the new source's newest picture was already shown before (the line is stalled)
                    **({"stale_picture": True} if repeat else {}),
                    **ack.extra,
                })
            elif not ack.future.done():
                remaining.append(ack)
        self.pending = remaining

    async def _audio_pump(self):
        silence = silence_frame()
        next_t = time.monotonic()
        while self.running:
            try:
                next_t += AUDIO_SAMPLES / AUDIO_RATE
                delay = next_t - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                elif delay < -0.2:
                    next_t = time.monotonic()  # we fell far behind: resync rather than burst
                source = self.source
                frame = None
                line = self.lines.get(source)
                if line is not None:
                    while len(line.audio) > 3:  # bound latency: keep the newest 60 ms
                        line.audio.popleft()
                    if line.audio:
                        frame = line.audio.popleft()
                elif source == "slate":
                    frame = self.slate.audio_frame()
                self.push.offer_audio(frame if frame is not None else silence)
                if self.output.audio_subs:  # like video: no listener, no encoding
                    self.output.encode_audio(frame if frame is not None else silence)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("%s: audio pump iteration failed", self.slug)
                await asyncio.sleep(0.1)

    # --- monitor: failover every 25 ms; health once a second, on the wall's beat ---
    async def _monitor(self):
        while self.running:
            try:
                await asyncio.sleep(0.025)
                self._evaluate_failover(time.monotonic())
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("%s: monitor iteration failed", self.slug)

    async def _health_beat(self):
        # Sampled just before one of the wall's frame slots (streams/cadence.py), so the sample is
        # on the dashboards within tens of milliseconds instead of waiting up to a frame interval.
        last = time.monotonic()
        while self.running:
            try:
                await asyncio.sleep(max(0.0, cadence.next_sample_at(self.slug) - time.time()))
                now = time.monotonic()
                elapsed, last = now - last, now
                await self._publish_health(now, elapsed)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("%s: health sample failed", self.slug)

    async def _publish_health(self, now, elapsed):
        await asyncio.gather(*(line.update_stats(elapsed) for line in self.lines.values()))
        program = self.output.health(now, self.source)
        program["viewers"] = len(self.viewers)
        program.update(self.counts())
        program["selected_by"] = self.selected_by
        program["holding"] = self.policy.holding
        program["overloaded"] = self.policy.overloaded
        program["loop_lag_ms"] = round(self.monitor.max_lag(now) * 1000, 1)
        program["decode_backlog"] = self.load.backlog
        health = {
            "at": time.time(),
            "program": program,
            "lines": {role: line.health(now) for role, line in self.lines.items()},
            "destinations": self.push.health(),
        }
        self.health_snapshot = health
        self.spawn(self.hooks.health(self.slug, health, None))
        if self.config.thumbnail_every_s and now - self.thumbnail_at >= self.config.thumbnail_every_s:
            self.thumbnail_at = now
            line = self.lines.get(self.source)
            picture = line.latest if line is not None and line.latest is not None else self.slate.video_frame()
            jpeg = await asyncio.get_running_loop().run_in_executor(
                None, encode_thumbnail, picture, self.config.thumbnail_width, self.config.thumbnail_height)
            self.spawn(self.hooks.snapshot(self.slug, jpeg))

    def process_load(self, now):
        lag = self.monitor.max_lag(now, 1.0)
        backlog = sum(line.decode_backlog() for line in self.lines.values())
        late = lag * 1000 >= self.config.loop_late_ms or backlog >= self.config.backlog_frames
        return ProcessLoad(late=late, lag_ms=lag * 1000, backlog=backlog)

    def line_view(self, line, now):
        return LineView(trigger=line.trigger(now), has_picture=line.has_picture, on_air_once=line.ever_had_frame,
                        gap_ms=line.observed_ms(line.last_frame_at, now) if line.last_frame_at is not None else None,
                        publisher_gone=line.publisher_gone,
                        healthy=line.trigger(now, excuse_lateness=False) is None)

    def _evaluate_failover(self, now):
        self.load = self.process_load(now)
        views = {role: self.line_view(line, now) for role, line in self.lines.items()}
        for decision in self.policy.evaluate(now, self.source, self.selected_by, self.auto_slate, views, self.load):
            self._carry_out(decision, now)

    def _carry_out(self, decision, now):
        if decision.kind == "switch":
            previous = self.source
            future = self._select(decision.target, "auto", now)
            self.spawn(self._report_auto_switch(previous, decision.target, decision.trigger, future, decision.detail))
        elif decision.kind == "hold" and "phase" not in decision.detail:
            self.spawn(self.hooks.failover_hold(self.slug, decision.trigger, decision.detail))
        elif decision.kind in ("hold", "hold_ended"):
            self.spawn(self.hooks.failover_hold_report(self.slug, decision.trigger, decision.detail))
        elif decision.kind in ("overload", "overload_ended"):
            if decision.kind == "overload" and decision.detail.get("phase") == "started":
                logger.warning("%s: the worker is running late (loop lag %s ms, %s frames waiting): input loss and "
                               "frozen pictures are held before failover",
                               self.slug, decision.detail.get("lag_ms"), decision.detail.get("backlog"))
            self.spawn(self.hooks.worker_overloaded(self.slug, decision.trigger, decision.detail))

    async def _report_auto_switch(self, previous, target, trigger, future, detail):
        try:
            ack = await asyncio.wait_for(future, 3.0)
        except Exception:
            ack = {"first_frame_at": None, "latency_ms": None}
        ack = {"from": previous, "to": target, **ack, **detail}
        await self.hooks.auto_switch(self.slug, ack, trigger)

    def _select(self, target, by, now):
        for ack in self.pending:  # a switch not yet on air is superseded by this one
            if ack.target != target and not ack.future.done():
                ack.future.set_exception(CommandError(f"superseded by a switch to {target} before its first frame"))
        self.pending = [ack for ack in self.pending if not ack.future.done()]
        if target == "slate" and self.source != "slate":
            self.source_before_slate = self.source
        self.source = target
        self.selected_by = by
        self.auto_slate = by == "auto" and target == "slate"
        future = asyncio.get_running_loop().create_future()
        self.pending.append(PendingAck(target, now, future))
        self.frame_arrived.set()
        return future

    # --- commands ---
    async def switch_source(self, target, timeout=3.0):
        if target not in SOURCES:
            raise CommandError(f"unknown source {target!r}; use primary, backup or slate")
        previous = self.source
        if target in LINE_ROLES and not self.lines[target].has_picture:
            raise CommandError(f"the {target} line has no picture (no publisher connected)")
        now = time.monotonic()
        if target == previous:
            self.selected_by = "manual"
            self.auto_slate = False
            return {"from": previous, "to": target, "first_frame_at": time.time(), "latency_ms": 0.0,
                    "unchanged": True, "source_before_slate": self.source_before_slate}
        future = self._select(target, "manual", now)
        try:
            ack = await asyncio.wait_for(future, timeout)
        except asyncio.TimeoutError:
            raise CommandError(f"no frame of {target} reached the output within {timeout:.0f} s") from None
        return {"from": previous, "to": target, **ack, "source_before_slate": self.source_before_slate}

    async def end_slate(self):
        if self.source != "slate":
            raise CommandError("the program is not on the slate")
        target = self.source_before_slate if self.source_before_slate in LINE_ROLES else "primary"
        if not self.lines[target].has_picture:
            other = "backup" if target == "primary" else "primary"
            if not self.lines[other].has_picture:
                raise CommandError("neither line has a picture: staying on the slate")
            target = other
        return await self.switch_source(target)

    async def request_keyframe(self, role):
        started = time.monotonic()
        if role == "program":
            self.output.request_keyframe("operator")
            self.output.last_key_at = -1e9
            return {"first_frame_at": time.time(), "latency_ms": round((time.monotonic() - started) * 1000, 1)}
        line = self.lines.get(role)
        if line is None:
            raise CommandError(f"unknown line {role!r}")
        if line.pc is None or not line.connected:
            raise CommandError(f"the {role} line has no publisher connected")
        if isinstance(line.pc, RtmpPull):
            raise CommandError(f"the {role} line is RTMP: its encoder's keyframe interval sets when keyframes come")
        sent = 0
        for receiver in line.pc.getReceivers():
            if receiver.track is not None and receiver.track.kind == "video":
                for source in receiver.getSynchronizationSources():
                    await receiver._send_rtcp_pli(source.source)
                    sent += 1
        if not sent:
            raise CommandError(f"the {role} line has not sent video yet")
        seq = line.seq
        # acknowledge with the first decoded frame after the request (the keyframe, usually)
        for _ in range(100):
            if line.seq != seq:
                break
            await asyncio.sleep(0.01)
        return {"first_frame_at": time.time(), "latency_ms": round((time.monotonic() - started) * 1000, 1),
                "pli_sent": sent}

    async def restart_line(self, role):
        line = self.lines.get(role)
        if line is None:
            raise CommandError(f"unknown line {role!r}")
        had_publisher = line.pc is not None
        session = line.session_id
        await line.detach("restart_line")
        if had_publisher:
            self.spawn(self.hooks.publisher_event(self.slug, role, "publisher_left",
                                                  {"session": session, "reason": "restart_line"}))
        return {"first_frame_at": None, "latency_ms": 0.0, "had_publisher": had_publisher}

    def apply_settings(self, settings):
        slate_changed = (settings.slate_path, settings.slate_kind, settings.slate_has_audio) != (
            self.settings.slate_path, self.settings.slate_kind, self.settings.slate_has_audio)
        self.settings = settings
        self.policy.settings = settings
        if self.running:
            self.push.apply(settings.destinations)
            self.spawn(self.apply_rtmp_pulls(settings.rtmp_pulls))
        if slate_changed:
            self.slate.close()
            self.slate = self._load_slate()

    # --- RTMP lines: pulled from the ingest edge while their encoder publishes there ---
    async def apply_rtmp_pulls(self, sources):
        """Pull each line the edge says is publishing; a new publisher session (the encoder reconnected)
        replaces the pull; a line no longer publishing is let go (publisher_left)."""
        async with self.pulls_lock:  # runs on every settings refresh: one reconciliation at a time
            await self._apply_rtmp_pulls({source.role: source for source in sources})

    async def _apply_rtmp_pulls(self, wanted):
        for role, line in self.lines.items():
            source = wanted.get(role)
            current = line.pc if isinstance(line.pc, RtmpPull) else None
            if source is not None and (current is None or current.source != source):
                pull = RtmpPull(line, source, asyncio.get_running_loop())
                replaced = await line.attach(pull, source.session)
                line.connected = False  # until the new pull delivers (the one it replaced may have been live)
                pull.start()
                self.spawn(self.hooks.publisher_event(
                    self.slug, role, "publisher_replaced" if replaced else "publisher_connected",
                    {"session": source.session, "kind": "rtmp"}))
            elif source is None and current is not None:
                await line.detach("rtmp_publish_done")
                self.spawn(self.hooks.publisher_event(self.slug, role, "publisher_left",
                                                      {"session": current.session, "kind": "rtmp",
                                                       "reason": "rtmp_publish_done"}))

    # --- WHIP: publishers ---
    async def publish(self, role, sdp):
        if role not in LINE_ROLES:
            raise BadOffer(f"unknown line {role!r}")
        validate_offer(sdp, need_video=("vp8", "h264"))
        line = self.lines[role]
        pc = ice.new_peer_connection()
        session_id = uuid.uuid4().hex

        @pc.on("track")
        def on_track(track):
            line.start_drain(pc, track)

        @pc.on("connectionstatechange")
        async def on_state():
            if pc is not line.pc:
                return
            if pc.connectionState == "connected":
                line.connected = True
            elif pc.connectionState in ("failed", "closed"):
                line.connected = False
                line.pc, line.session_id = None, None
                await pc.close()
                self.spawn(self.hooks.publisher_event(self.slug, role, "publisher_left",
                                                      {"session": session_id, "reason": pc.connectionState}))

        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
            for transceiver in pc.getTransceivers():
                transceiver.direction = "recvonly"
            ice.answer_as_dtls_server(pc)
            answer = await pc.createAnswer()
            await pc.setLocalDescription(answer)
        except Exception as exc:
            await pc.close()
            raise BadOffer(f"the offer could not be used: {exc}") from None
        replaced_session = line.session_id
        replaced = await line.attach(pc, session_id)

        async def half_open():
            if line.pc is pc:
                await line.detach("handshake_timeout")
                self.spawn(self.hooks.publisher_event(self.slug, role, "publisher_left",
                                                      {"session": session_id, "reason": "handshake_timeout"}))
            else:
                await pc.close()

        self.reap_unless_connected(pc, f"publisher {role} {session_id}", half_open)
        self.spawn(self.hooks.publisher_event(
            self.slug, role, "publisher_replaced" if replaced else "publisher_connected",
            {"session": session_id, "replaced_session": replaced_session}))
        return session_id, pc.localDescription.sdp

    async def unpublish(self, role, session_id):
        line = self.lines.get(role)
        if line is None or line.session_id != session_id:
            return False
        await line.detach("delete")
        self.spawn(self.hooks.publisher_event(self.slug, role, "publisher_left",
                                              {"session": session_id, "reason": "whip_delete"}))
        return True

    # --- WHEP: viewers ---
    async def play(self, sdp):
        parsed = validate_offer(sdp, need_video=("vp8",))
        if len(self.viewers) >= self.config.max_viewers and not await self._evict_oldest_half_open():
            raise OutputFull(f"this room's output already serves {len(self.viewers)} viewers (the limit); try again later")
        pc = ice.new_peer_connection()
        session_id = uuid.uuid4().hex
        stock = self.config.fanout == "stock"
        video = StockViewerTrack(self.output) if stock else ViewerTrack(self.output, "video")
        vt = pc.addTransceiver(video, direction="sendonly")
        vt.setCodecPreferences([c for c in RTCRtpSender.getCapabilities("video").codecs
                                if c.mimeType.lower() in ("video/vp8", "video/rtx")])
        audio = None
        if any(m.kind == "audio" for m in parsed.media):  # a transceiver without an m-line breaks the answer
            audio = ViewerTrack(self.output, "audio")
            at = pc.addTransceiver(audio, direction="sendonly")
            at.setCodecPreferences([c for c in RTCRtpSender.getCapabilities("audio").codecs
                                    if c.mimeType.lower() == "audio/opus"])
        if not stock:
            # the packet path ignores PLI/FIR: route them to the shared encoder (coalesced)
            vt.sender._send_keyframe = lambda: self.output.request_keyframe("pli")
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
            ice.answer_as_dtls_server(pc)
            answer = await pc.createAnswer()
            await pc.setLocalDescription(answer)
        except Exception as exc:
            video.stop()
            if audio is not None:
                audio.stop()
            await pc.close()
            raise BadOffer(f"the offer could not be used: {exc}") from None
        self.viewers[session_id] = (pc, tuple(t for t in (video, audio) if t is not None))
        self.reap_unless_connected(pc, f"viewer {session_id}", lambda: self.stop_viewer(session_id))

        @pc.on("connectionstatechange")
        async def on_state():
            if pc.connectionState in ("failed", "closed"):
                await self.stop_viewer(session_id)

        return session_id, pc.localDescription.sdp

    async def _evict_oldest_half_open(self):
        """A full room gives the slot of its oldest viewer still handshaking to a new one: offers that never
        connect (a flood from many addresses) cannot keep real viewers out until they are reaped."""
        for session_id, (pc, _tracks) in self.viewers.items():
            if pc.connectionState != "connected":
                logger.info("%s: viewer %s still not connected; its slot goes to a new viewer", self.slug, session_id)
                return await self.stop_viewer(session_id)
        return False

    async def stop_viewer(self, session_id):
        entry = self.viewers.pop(session_id, None)
        if entry is None:
            return False
        pc, tracks = entry
        for t in tracks:
            t.stop()
        await pc.close()
        return True

    async def add_candidates(self, kind, session_id, sdpfrag, role=None):
        """Trickle ICE (RFC 9725 PATCH with an SDP fragment)."""
        if kind == "whip":
            line = self.lines.get(role)
            pc = line.pc if line is not None and line.session_id == session_id else None
        else:
            pc = self.viewers.get(session_id, (None,))[0]
        if pc is None:
            return False
        mid = None
        transceivers = pc.getTransceivers()
        for raw in sdpfrag.splitlines():
            raw = raw.strip()
            if raw.startswith("a=mid:"):
                mid = raw[6:]
            elif raw.startswith("a=candidate:"):
                candidate = candidate_from_sdp(raw[len("a=candidate:"):])
                candidate.sdpMid = mid or (transceivers[0].mid if transceivers else "0")
                await pc.addIceCandidate(candidate)
        return True
