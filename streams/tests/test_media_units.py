"""Rules of the fan-out that are hard to provoke over the network: bounded viewer queues and keyframes."""

import asyncio

import av
import pytest

from streams.media.engine import (
    KEYFRAME_MIN_INTERVAL_S,
    Line,
    VIEWER_AUDIO_QUEUE,
    VIEWER_VIDEO_QUEUE,
    OutputConfig,
    ProgramOutput,
    RoomEngine,
    RoomSettings,
    ViewerTrack,
    Hooks,
)


@pytest.fixture
async def output():
    room = RoomEngine("unit-room", RoomSettings(), OutputConfig(width=64, height=48), Hooks())
    return ProgramOutput(room, room.config)


def packet(i):
    p = av.Packet(bytes([i % 256]) * 10)
    p.pts = i
    return p


async def test_slow_viewer_drops_to_the_next_keyframe_and_asks_for_one(output):
    viewer = ViewerTrack(output, "video")
    output.subscribe(viewer)
    output.key_wanted = False
    viewer.offer(packet(0), True)
    for i in range(1, VIEWER_VIDEO_QUEUE):
        viewer.offer(packet(i), False)
    assert len(viewer.queue) == VIEWER_VIDEO_QUEUE
    viewer.offer(packet(1000), False)  # overflow: never drop a single frame
    assert len(viewer.queue) == 0 and viewer.need_keyframe and output.key_wanted
    assert "viewer_overflow" in output.keyframe_reasons
    viewer.offer(packet(1001), False)  # delta frames are useless until the next keyframe
    assert len(viewer.queue) == 0
    viewer.offer(packet(1002), True)
    viewer.offer(packet(1003), False)
    assert [p.pts for p in viewer.queue] == [1002, 1003]
    assert (await viewer.recv()).pts == 1002


async def test_new_viewer_starts_at_a_keyframe_and_requests_one(output):
    output.key_wanted = False
    viewer = ViewerTrack(output, "video")
    task = asyncio.ensure_future(viewer.recv())  # first recv subscribes
    await asyncio.sleep(0)
    assert viewer in output.video_subs and output.key_wanted and "viewer_join" in output.keyframe_reasons
    viewer.offer(packet(1), False)
    await asyncio.sleep(0)
    assert not task.done()
    viewer.offer(packet(2), True)
    assert (await asyncio.wait_for(task, 1)).pts == 2


async def test_audio_queue_drops_oldest_packets(output):
    viewer = ViewerTrack(output, "audio")
    for i in range(VIEWER_AUDIO_QUEUE + 5):
        viewer.offer(packet(i), True)
    assert len(viewer.queue) == VIEWER_AUDIO_QUEUE and viewer.queue[0].pts == 5


async def test_forced_keyframes_are_coalesced_and_periodic(output):
    now = 100.0
    output.last_key_at = now
    output.request_keyframe("pli")
    assert not output._want_keyframe(now + KEYFRAME_MIN_INTERVAL_S / 2)  # rate-limited
    assert output._want_keyframe(now + KEYFRAME_MIN_INTERVAL_S)
    output.key_wanted = False
    assert not output._want_keyframe(now + 1.0)
    assert output._want_keyframe(now + output.config.keyframe_interval_s)  # periodic


async def test_encoder_forces_a_keyframe_without_leaving_it_on_the_shared_frame(output):
    frame = av.VideoFrame(64, 48, "yuv420p")
    for plane in frame.planes:
        plane.update(bytes(plane.buffer_size))
    packets, _ = output.encode_video(frame, 0, True)
    assert packets and packets[0].is_keyframe
    packets, _ = output.encode_video(frame, 3000, False)
    assert packets and not packets[0].is_keyframe
    packets, encoded = output.encode_video(frame, 6000, True)
    assert packets[0].is_keyframe and encoded.pict_type == av.video.frame.PictureType.NONE


async def test_a_switch_not_yet_on_air_is_superseded_by_the_next_one():
    from streams.media.engine import CommandError

    room = RoomEngine("unit-room", RoomSettings(), OutputConfig(width=64, height=48), Hooks())
    first = room._select("backup", "manual", 0.0)
    second = room._select("slate", "manual", 0.0)
    assert isinstance(first.exception(), CommandError) and not second.done()
    assert room.source == "slate" and room.source_before_slate == "backup"
    room._resolve_acks("slate", 0.02)
    assert second.result()["latency_ms"] == 20.0


def test_thumbnails_do_not_disturb_the_program_scaling_the_same_frame():
    """The worker scales one decoded picture for the program encoder and, every few seconds, for a
    thumbnail, in two threads at once. Both must always get what they asked for."""
    import threading

    import numpy as np

    from streams.media.engine import encode_thumbnail

    picture = np.zeros((360, 640, 3), np.uint8)
    picture[...] = (220, 30, 30)
    frame = av.VideoFrame.from_ndarray(picture, format="rgb24").reformat(format="yuv420p")
    problems = []

    def program():
        for _ in range(300):
            out = frame.reformat(width=320, height=240, format="yuv420p")
            rgb = out.to_ndarray(format="rgb24")
            if out.width != 320 or out.height != 240 or abs(int(rgb[120, 160, 0]) - 220) > 12:
                problems.append(("program", out.width, out.height, rgb[120, 160].tolist()))

    def thumbnails():
        for _ in range(300):
            jpeg = encode_thumbnail(frame, 320, 180)
            if jpeg[:2] != b"\xff\xd8":
                problems.append(("thumbnail", jpeg[:4]))

    threads = [threading.Thread(target=program), threading.Thread(target=thumbnails)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not problems, problems[:5]


def test_a_line_that_loses_picture_and_sound_together_is_input_loss_not_silence():
    room = RoomEngine("unit-room", RoomSettings(input_loss_ms=500, silence_ms=400), OutputConfig(), Hooks())
    line = Line(room, "primary")
    line.connected = True
    line.has_audio = True
    line.last_frame_at = line.last_audio_at = 10.0  # a stall: both stop at t = 10 s
    assert line.trigger(10.45) is None  # audio has been gone past silence_ms, but so has the picture
    assert line.trigger(10.5) == "input_loss"
    line.last_frame_at = 10.44  # the picture still flows: missing sound alone is silence
    assert line.trigger(10.45) == "silence"
