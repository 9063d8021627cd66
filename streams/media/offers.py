"""Cheap checks of an SDP offer before any expensive work."""

import re

from .common import BadOffer

MEDIA_LINE = re.compile(r"^m=[a-z]+ \d+(/\d+)? [A-Za-z/]+( \S+)+\s*$")
MAX_OFFER_BYTES = 64 * 1024  # a browser's offer with every candidate is ~5-15 KB
MAX_MEDIA_SECTIONS = 4  # video + audio (+ a spare, e.g. a data channel we ignore)


def cheap_checks(sdp):
    """What can be refused by looking at the text, in microseconds, before any SDP parser runs."""
    if not isinstance(sdp, str) or not sdp.lstrip()[:3] == "v=0":
        raise BadOffer("the body is not an SDP offer (it must start with 'v=0')")
    if len(sdp) > MAX_OFFER_BYTES:
        raise BadOffer(f"the offer is too large ({len(sdp)} bytes; at most {MAX_OFFER_BYTES})")
    sections = sdp.count("\nm=")
    if sections > MAX_MEDIA_SECTIONS:
        raise BadOffer(f"the offer has {sections} media sections; at most {MAX_MEDIA_SECTIONS}")
    for line in sdp.splitlines():
        if line.startswith("m=") and not MEDIA_LINE.match(line):
            raise BadOffer(f"malformed SDP: bad media line {line[:60]!r}")
    if "\nm=video " not in sdp:
        raise BadOffer("the offer has no video section")
    if "a=ice-ufrag:" not in sdp or "a=ice-pwd:" not in sdp:
        raise BadOffer("the offer has no ICE credentials (a=ice-ufrag / a=ice-pwd)")
    if "a=fingerprint:" not in sdp:
        raise BadOffer("the offer has no DTLS fingerprint")


def validate_offer(sdp, need_video):
    """Parse an SDP offer; raise BadOffer with a clear message if it is unusable."""
    from aiortc.sdp import SessionDescription

    cheap_checks(sdp)
    try:
        parsed = SessionDescription.parse(sdp)
    except Exception as exc:
        raise BadOffer(f"malformed SDP: {exc}") from None
    videos = [m for m in parsed.media if m.kind == "video"]
    if not videos:
        raise BadOffer("the offer has no video section")
    codecs = {c.mimeType.split("/")[-1].lower() for m in videos for c in m.rtp.codecs}
    if not codecs & set(need_video):
        wanted = " or ".join(c.upper() for c in need_video)
        raise BadOffer(f"the offer has no usable video codec: need {wanted}, got {', '.join(sorted(codecs)) or 'none'}")
    if not any(m.ice and m.ice.usernameFragment for m in parsed.media) and not (parsed.ice and parsed.ice.usernameFragment):
        raise BadOffer("the offer has no ICE credentials (a=ice-ufrag / a=ice-pwd)")
    if not any(m.dtls and m.dtls.fingerprints for m in parsed.media) and not (parsed.dtls and parsed.dtls.fingerprints):
        raise BadOffer("the offer has no DTLS fingerprint")
    return parsed
