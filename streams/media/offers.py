"""Cheap checks of an SDP offer before any expensive work."""

from .common import BadOffer


def validate_offer(sdp, need_video):
    """Parse an SDP offer; raise BadOffer with a clear message if it is unusable."""
    from aiortc.sdp import SessionDescription

    if not isinstance(sdp, str) or not sdp.strip().startswith("v=0"):
        raise BadOffer("the body is not an SDP offer (it must start with 'v=0')")
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
