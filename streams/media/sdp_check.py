"""Cheap checks of an anonymous SDP offer, before anything parses it for real.

aiortc's parser and peer connection cost time in proportion to the offer: an offer with thousands of
m-lines kept one process busy for seconds. This module only scans lines (bounded by the size cap) and
refuses anything a WHIP encoder or WHEP player would never send. No Django: the engine may call it too.
"""

from dataclasses import dataclass

MAX_BYTES = 32 * 1024  # browsers' offers are 3-8 KB; a few candidates more stay far below
MAX_LINES = 400
MAX_LINE_CHARS = 2048
MAX_MEDIA = 4  # video + audio (+ a data channel); WHIP/WHEP need no more
MEDIA_KINDS = ("audio", "video", "application")


class SdpRejected(ValueError):
    """The offer is refused; the message is shown to the client (HTTP 400)."""


@dataclass
class OfferShape:
    media: list  # kinds of the m-lines, in order
    lines: int


def check_offer(sdp, need_video=True, max_bytes=MAX_BYTES, max_lines=MAX_LINES, max_media=MAX_MEDIA):
    """Scan an offer's lines; raise SdpRejected unless it is small, well-formed and complete.

    Every m-section needs ICE credentials (a=ice-ufrag and a=ice-pwd) and a DTLS fingerprint, in the
    section or at session level; with need_video, at least one m=video line.
    """
    if not isinstance(sdp, str):
        raise SdpRejected("the SDP offer must be text")
    if len(sdp) > max_bytes or len(sdp.encode("utf-8", "surrogatepass")) > max_bytes:
        raise SdpRejected(f"the SDP offer is too large (over {max_bytes} bytes)")
    if not sdp.startswith("v=0"):
        raise SdpRejected("the body is not an SDP offer (it must start with 'v=0')")
    # split, not splitlines(): only CRLF/LF end an SDP line (form feeds, U+2028 etc. are junk inside one)
    raw_lines = sdp.replace("\r\n", "\n").split("\n")
    if len(raw_lines) > max_lines + 1:
        raise SdpRejected(f"the SDP offer has too many lines (over {max_lines})")
    session = set()
    sections = []  # one set of seen attribute names per m-section
    kinds = []
    for number, line in enumerate(raw_lines, start=1):
        if not line:
            continue
        if len(line) > MAX_LINE_CHARS:
            raise SdpRejected(f"SDP line {number} is too long")
        if len(line) < 2 or line[1] != "=" or not ("a" <= line[0] <= "z"):
            raise SdpRejected(f"SDP line {number} is not of the form <letter>=<value>")
        if any(ord(ch) < 32 and ch != "\t" for ch in line):
            raise SdpRejected(f"SDP line {number} contains control characters")
        if line[0] == "m":
            if len(sections) >= max_media:
                raise SdpRejected(f"the SDP offer has too many media sections (at most {max_media})")
            parts = line[2:].split()
            if len(parts) < 4 or parts[0] not in MEDIA_KINDS or not parts[1].isdigit():
                raise SdpRejected(f"SDP line {number} is not a valid m-line")
            kinds.append(parts[0])
            sections.append(set())
        elif line[0] == "a":
            name = line[2:].split(":", 1)[0]
            if name in ("ice-ufrag", "ice-pwd", "fingerprint") and not line[2 + len(name) + 1:].strip():
                raise SdpRejected(f"SDP line {number}: a={name} is empty")
            (sections[-1] if sections else session).add(name)
    if need_video and "video" not in kinds:
        raise SdpRejected("the offer has no video section")
    if not sections:
        raise SdpRejected("the SDP offer has no media section")
    for index, attributes in enumerate(sections):
        have = session | attributes
        if "ice-ufrag" not in have or "ice-pwd" not in have:
            raise SdpRejected(f"media section {index + 1} has no ICE credentials (a=ice-ufrag / a=ice-pwd)")
        if "fingerprint" not in have:
            raise SdpRejected(f"media section {index + 1} has no DTLS fingerprint (a=fingerprint)")
    return OfferShape(media=kinds, lines=len(raw_lines))
