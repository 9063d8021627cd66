"""A second, independent WebRTC stack: headless Chromium publishes over WHIP and plays over WHEP through
the media worker (embedded in a real Daphne), with RSA and ECDSA certificates, VP8 and H264, trickle or not."""

import asyncio
import os
import time

import pytest

from conftest import CHROMIUM_ARGS as BROWSER_ARGS
from conftest import ROOT, running_daphne
from streams.media import ice

from .media_support import Http, Publisher, Viewer

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow,
              pytest.mark.browser]

CHROMIUM_ARGS = [
    *BROWSER_ARGS,
    "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
    # loopback only: let libwebrtc use 127.0.0.1 and show real addresses instead of mDNS names
    "--allow-loopback-in-peer-connection", "--disable-features=WebRtcHideLocalIpsWithMdns",
]

PAGE = """<!doctype html><html><body>
<canvas id=c width=320 height=240></canvas><video id=v autoplay muted playsinline width=320 height=240></video>
<script src="/static/js/webrtc-client.js"></script>
<script>
window.paint = function (rgb) {
  const c = document.getElementById('c'), g = c.getContext('2d');
  let x = 0;
  clearInterval(window.painter);
  window.painter = setInterval(() => {
    g.fillStyle = rgb; g.fillRect(0, 0, 320, 240);
    g.fillStyle = '#fff'; g.fillRect(x, 5, 20, 15); x = (x + 7) % 300;   // moving: never 'frozen'
  }, 33);
};
window.certificate = (kind) => RTCPeerConnection.generateCertificate(kind === 'RSA'
  ? {name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256'}
  : {name: 'ECDSA', namedCurve: 'P-256'});
window.publish = async (rgb, certKind, codec, trickle, token, useCamera) => {
  let stream;
  if (useCamera) {
    stream = await navigator.mediaDevices.getUserMedia({video: {width: 320, height: 240}, audio: true});
  } else {
    window.paint(rgb);
    const mic = await navigator.mediaDevices.getUserMedia({audio: true});
    stream = document.getElementById('c').captureStream(25);
    stream.addTrack(mic.getAudioTracks()[0]);
  }
  const cert = await window.certificate(certKind);
  window.session = await ControlroomWebRTC.publishWhip(stream, '/whip/test-room/primary', token,
    {certificates: [cert], videoCodec: codec, trickle: trickle});
  return window.session.pc.getSenders().map(s => s.track && s.track.kind).join(',');
};
window.sentCodec = async () => {
  const stats = await window.session.pc.getStats();
  let codec = null;
  stats.forEach(r => { if (r.type === 'codec' && r.mimeType.startsWith('video/')) codec = r.mimeType; });
  return codec;
};
window.play = async (certKind, trickle) => {
  const cert = await window.certificate(certKind);
  window.player = await ControlroomWebRTC.playWhep(document.getElementById('v'), '/whep/test-room',
    {certificates: [cert], trickle: trickle});
};
window.centre = () => {
  const v = document.getElementById('v');
  if (!v.videoWidth) return null;
  const c = document.createElement('canvas'); c.width = v.videoWidth; c.height = v.videoHeight;
  const g = c.getContext('2d'); g.drawImage(v, 0, 0);
  const d = g.getImageData(c.width / 3, c.height / 3, c.width / 3, c.height / 3).data;
  let r = 0, gg = 0, b = 0, n = 0;
  for (let i = 0; i < d.length; i += 4) { r += d[i]; gg += d[i + 1]; b += d[i + 2]; n++; }
  return [r / n, gg / n, b / n];
};
window.h264 = () => RTCRtpSender.getCapabilities('video').codecs.some(c => c.mimeType === 'video/H264');
</script></body></html>"""


@pytest.fixture
def embedded_daphne(subprocess_env):
    """Daphne with the media worker embedded in its loop (no REDIS_URL), on the shared test database."""
    env = {**subprocess_env, "REDIS_URL": "", "MEDIA_OUTPUT_WIDTH": "320", "MEDIA_OUTPUT_HEIGHT": "240",
           "MEDIA_OUTPUT_BITRATE": "500000", "LOG_LEVEL": "WARNING"}
    with running_daphne(env, "daphne-media-browser.log") as url:
        yield url


def classify_css(rgb):
    from .media_support import classify

    return classify(tuple(rgb)) if rgb else None


async def wait_in_page(page, expected, timeout=10):
    deadline = time.monotonic() + timeout
    seen = None
    while time.monotonic() < deadline:
        seen = classify_css(await page.evaluate("window.centre()"))
        if seen == expected:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"chromium's WHEP video never showed {expected}; last {seen}")


async def test_chromium_publishes_over_whip_and_plays_over_whep(embedded_daphne, room):
    from playwright.async_api import async_playwright

    ice.configure(host_addresses=["127.0.0.1"])
    http = Http(embedded_daphne)
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page()
            await page.goto(embedded_daphne + "/static/js/webrtc-client.js")
            await page.set_content(PAGE)
            await page.wait_for_function("!!(window.ControlroomWebRTC && window.publish)")
            has_h264 = await page.evaluate("window.h264()")
            print(f"chromium offers H264: {has_h264}")
            viewer = await Viewer(http, room.slug).start()  # aiortc viewer of the same program
            try:
                variants = [("blue", "RSA", "VP8", False), ("yellow", "ECDSA", "H264" if has_h264 else "VP8", True)]
                for colour, cert, codec, trickle in variants:
                    started = time.monotonic()
                    rgb = "rgb(%d,%d,%d)" % __import__("streams.tests.media_support", fromlist=["COLOURS"]).COLOURS[colour]
                    kinds = await page.evaluate("([c, k, codec, t, tok]) => window.publish(c, k, codec, t, tok, false)",
                                                [rgb, cert, codec, trickle, room.tokens["primary"]])
                    assert sorted(kinds.split(",")) == ["audio", "video"]
                    await viewer.wait_for(colour, since=started, timeout=15)
                    sent = await page.evaluate("window.sentCodec()")
                    assert sent == f"video/{codec}", (cert, codec, sent)
                # chromium also plays the program over WHEP (VP8 from the shared encoder), ECDSA + trickle
                await page.evaluate("window.play('ECDSA', true)")
                await wait_in_page(page, "yellow", timeout=15)
                os.makedirs(ROOT / "test-artifacts", exist_ok=True)
                await page.screenshot(path=str(ROOT / "test-artifacts" / "media-chromium-whep.png"))
                # and with an RSA certificate, non-trickle, while an aiortc publisher takes over the line
                page2 = await browser.new_page()
                await page2.goto(embedded_daphne + "/static/js/webrtc-client.js")
                await page2.set_content(PAGE)
                await page2.wait_for_function("!!(window.ControlroomWebRTC && window.play)")
                await page2.evaluate("window.play('RSA', false)")
                await wait_in_page(page2, "yellow", timeout=15)
                publisher = await Publisher(http, room.slug, "primary", room.tokens["primary"], "red").start()
                await wait_in_page(page2, "red", timeout=10)
                await wait_in_page(page, "red", timeout=10)
                await publisher.close()
                # the fake camera (a real getUserMedia device) publishes too
                started = time.monotonic()
                await page.evaluate("([tok]) => window.publish(null, 'ECDSA', 'VP8', false, tok, true)",
                                    [room.tokens["primary"]])
                await viewer.wait_for("other", since=started, timeout=15)
                await page.evaluate("window.session.close()")
            finally:
                await viewer.close()
        finally:
            await browser.close()
