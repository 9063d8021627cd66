"""Cheap checks of an SDP offer before any expensive work."""

from .common import BadOffer
from .sdp_check import SdpRejected, check_offer


def validate_offer(sdp, need_video):
    """Parse an SDP offer; raise BadOffer with a clear message if it is unusable."""
    from aiortc.sdp import SessionDescription

    try:
        check_offer(sdp, need_video=True)  # text only: refuses floods of m-lines in microseconds
    except SdpRejected as exc:
        raise BadOffer(str(exc)) from None
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
    return parsed
