# voip.sdp: SDP offer/answer (RFC 3264) for a G.711 telephone: PCMU/PCMA, telephone-event, hold.
# MIT licence.
#
# We speak exactly one RTP/AVP audio stream at 8000 Hz. An offer may carry anything (video, SRTP,
# ICE, several audio streams): we accept the first plain-RTP audio stream that has a codec in
# common and reject every other m= line with port 0, keeping the offer's order (RFC 3264 section
# 6). With nothing usable, answer() raises NoCommonCodec and the user agent answers 488.
from .sdp_description import (
    DIRECTIONS,
    Connection,
    MediaDescription,
    SessionDescription,
    is_token,
)

__all__ = (
    "DIRECTIONS",
    "Connection",
    "Media",
    "MediaDescription",
    "NoCommonCodec",
    "SessionDescription",
    "accept_answer",
    "answer",
    "build_offer",
)

CODEC_PAYLOAD_TYPES = {"PCMU": 0, "PCMA": 8}
_CLOCK_RATE = 8000
_DEFAULT_PTIME = 20
# The events we can play and send: digits, * and #, A-D (RFC 4733 section 3.2).
_EVENT_RANGE = "0-15"
_SESSION_NAME = "sipmote"


class NoCommonCodec(ValueError):
    """Nothing in the offer (or answer) is usable: no plain-RTP audio with PCMU or PCMA.
    A subclass of ValueError, so `except ValueError` still catches every SDP failure."""


class Media:
    """What offer/answer settled for the audio stream.

    Addresses and ports are the peer's (where we send); `payload_type` and `telephone_event` are
    what we send with. `direction` is ours: `sends`/`receives` say whether media flows each way.
    `ptime` is the packetization the peer asked for (20 when it did not say)."""

    def __init__(self, index, section, payload_type, codec, direction, rtcp_mux):
        connection = section.connection
        self.index = index  # position of the m= line in the description
        self.address = connection.address
        self.address_type = connection.addrtype
        self.port = section.port
        self.rtcp_mux = rtcp_mux
        if rtcp_mux:
            self.rtcp_address, self.rtcp_port = self.address, self.port
        else:
            rtcp = section.rtcp_connection
            self.rtcp_address = rtcp.address if rtcp is not None else self.address
            self.rtcp_port = section.rtcp_port
            if self.rtcp_port is None and self.port < 65535:
                self.rtcp_port = self.port + 1  # RFC 3550 section 11: the next port up
        self.payload_type = payload_type
        self.codec = codec
        self.clock_rate = _CLOCK_RATE
        self.telephone_event = None  # payload type for sending RFC 4733 events, or None
        self.recv_telephone_event = None  # the one the peer sends them with, or None
        self.ptime = section.ptime or _DEFAULT_PTIME
        self.maxptime = section.maxptime
        self.direction = direction
        self.sends = direction in ("sendrecv", "sendonly")
        self.receives = direction in ("sendrecv", "recvonly")
        self.remote_session_id = 0
        self.remote_version = 0

    def __repr__(self):
        return "Media(%s %s:%d pt=%d te=%s ptime=%d %s)" % (
            self.codec,
            self.address,
            self.port,
            self.payload_type,
            self.telephone_event,
            self.ptime,
            self.direction,
        )


def _flags(direction):
    return direction in ("sendrecv", "sendonly"), direction in ("sendrecv", "recvonly")


def _direction(send, receive):
    if send:
        return "sendrecv" if receive else "sendonly"
    return "recvonly" if receive else "inactive"


def _our_direction(wanted, section):
    """Ours, given what we want and what the peer's section says about itself (RFC 3264 6.1)."""
    want_send, want_receive = _flags(wanted)
    peer_sends, peer_receives = _flags(section.direction)
    if section.connection is not None and section.connection.is_null():
        peer_receives = False  # c=0.0.0.0: RFC 2543 hold, "don't send to me"
    return _direction(want_send and peer_receives, want_receive and peer_sends)


def parsed(sd):
    if isinstance(sd, SessionDescription):
        return sd
    return SessionDescription.parse(sd)


def _find_codec(section, name):
    """The first offered payload type carrying codec `name` at 8000 Hz mono, or None."""
    for pt in section.payload_types():
        entry = section.codec(pt)
        if entry is not None and entry[0].upper() == name and entry[1] == _CLOCK_RATE:
            if entry[2] == 1:
                return pt
    return None


def _find_telephone_event(section):
    for pt in section.payload_types():
        entry = section.rtpmap.get(pt)
        if entry is not None and entry[0].lower() == "telephone-event" and entry[1] == _CLOCK_RATE:
            return pt
    return None


def _check_common(address, port, direction, ptime, username):
    if not is_token(address) or "/" in address:
        raise ValueError("SDP address must be a bare IPv4/IPv6 address: %r" % (address,))
    if not isinstance(port, int) or not 0 < port <= 65535:
        raise ValueError("SDP media port must be 1..65535: %r" % (port,))
    if direction not in DIRECTIONS:
        raise ValueError("SDP direction must be one of %s: %r" % ("/".join(DIRECTIONS), direction))
    if not isinstance(ptime, int) or not 10 <= ptime <= 200:
        raise ValueError("SDP ptime must be 10..200 ms: %r" % (ptime,))
    if not is_token(username):
        raise ValueError("SDP o= username must be a visible token: %r" % (username,))


def _check_codecs(codecs):
    if not codecs:
        raise ValueError("SDP needs at least one codec")
    for name in codecs:
        if name not in CODEC_PAYLOAD_TYPES:
            raise ValueError("SDP codec %r not supported (PCMU, PCMA)" % (name,))


def new_session_id():
    """A random o= session id; pass your own to keep descriptions reproducible."""
    import random

    return random.getrandbits(30) + 1


def _session_head(username, session_id, version, address):
    if not isinstance(session_id, int) or not isinstance(version, int):
        raise ValueError("SDP session id and version must be integers")
    if session_id < 0 or version < 0:
        raise ValueError("SDP session id and version must not be negative")
    addrtype = "IP6" if ":" in address else "IP4"
    return [
        "v=0",
        "o=%s %d %d IN %s %s" % (username, session_id, version, addrtype, address),
        "s=" + _SESSION_NAME,
        "c=IN %s %s" % (addrtype, address),
        "t=0 0",
    ]


def _audio_section(lines, port, codecs, event_pt, ptime, direction, rtcp_mux, proto):
    """Append one audio m= section: codecs is a list of (payload type, name)."""
    formats = [str(pt) for pt, _ in codecs]
    if event_pt is not None:
        formats.append(str(event_pt))
    lines.append("m=audio %d %s %s" % (port, proto, " ".join(formats)))
    for pt, name in codecs:
        lines.append("a=rtpmap:%d %s/%d" % (pt, name, _CLOCK_RATE))
    if event_pt is not None:
        lines.append("a=rtpmap:%d telephone-event/%d" % (event_pt, _CLOCK_RATE))
        lines.append("a=fmtp:%d %s" % (event_pt, _EVENT_RANGE))
    lines.append("a=ptime:%d" % ptime)
    if rtcp_mux:
        lines.append("a=rtcp-mux")
    lines.append("a=" + direction)


def _encode(lines):
    lines.append("")
    return "\r\n".join(lines).encode()


def build_offer(
    address,
    port,
    codecs=("PCMU", "PCMA"),
    session_id=None,
    version=1,
    direction="sendrecv",
    ptime=20,
    telephone_event=101,
    rtcp_mux=False,
    username="-",
):
    """An SDP offer (bytes, CRLF) for one RTP/AVP audio stream at address:port.

    codecs are offered in the order given; telephone_event is the dynamic payload type for
    RFC 4733 events (96..127) or None; direction "sendonly" puts the peer on hold."""
    _check_common(address, port, direction, ptime, username)
    _check_codecs(codecs)
    if telephone_event is not None and not 96 <= telephone_event <= 127:
        raise ValueError("telephone-event payload type must be dynamic (96..127)")
    if session_id is None:
        session_id = new_session_id()
    lines = _session_head(username, session_id, version, address)
    offered = [(CODEC_PAYLOAD_TYPES[name], name) for name in codecs]
    _audio_section(lines, port, offered, telephone_event, ptime, direction, rtcp_mux, "RTP/AVP")
    return _encode(lines)


def _usable_audio(offer, preference):
    """(index, section, payload type, codec name) of the first audio stream we can take, or
    raise NoCommonCodec saying why none was taken."""
    why = "the offer has no audio stream"
    for index, section in enumerate(offer.media):
        if section.media != "audio":
            continue
        if section.port == 0:
            why = "the offer's audio stream is disabled (port 0)"
        elif section.is_secure():
            why = "the offer's audio needs %s (SRTP), which we do not do" % section.proto
        elif section.proto.upper() not in ("RTP/AVP", "RTP/AVPF"):
            why = "the offer's audio uses %s, not RTP/AVP" % section.proto
        else:
            for name in preference:
                pt = _find_codec(section, name)
                if pt is not None:
                    return index, section, pt, name
            why = "no common codec: the offer has %s, we take %s" % (
                " ".join(section.formats),
                "/".join(preference),
            )
    raise NoCommonCodec(why)


def answer(
    offer,
    address,
    port,
    preference=("PCMU", "PCMA"),
    session_id=None,
    version=1,
    direction="sendrecv",
    ptime=20,
    telephone_event=True,
    rtcp_mux=False,
    username="-",
):
    """Answer an offer (bytes, str or SessionDescription): returns (answer bytes, Media).

    `direction` is what we want (sendrecv, or sendonly/inactive while we hold); the answer's
    direction is that narrowed by the offer's (a sendonly offer gets recvonly). Raises
    NoCommonCodec (488) when no stream is usable, ValueError when the offer is malformed."""
    _check_common(address, port, direction, ptime, username)
    _check_codecs(preference)
    offer = parsed(offer)
    chosen, section, pt, name = _usable_audio(offer, preference)
    if session_id is None:
        session_id = new_session_id()
    ours = _our_direction(direction, section)
    mux = rtcp_mux and section.rtcp_mux
    event_pt = _find_telephone_event(section) if telephone_event else None
    lines = _session_head(username, session_id, version, address)
    for index, other in enumerate(offer.media):
        if index == chosen:
            _audio_section(lines, port, [(pt, name)], event_pt, ptime, ours, mux, section.proto)
        else:
            # Rejected: port 0, same media and proto, the offered formats (RFC 3264 section 6).
            formats = " ".join(other.formats) if other.formats else "0"
            lines.append("m=%s 0 %s %s" % (other.media, other.proto, formats))
    media = Media(chosen, section, pt, name, ours, mux)
    media.telephone_event = media.recv_telephone_event = event_pt
    media.remote_session_id = offer.session_id
    media.remote_version = offer.session_version
    return _encode(lines), media


def accept_answer(answer_sdp, offer_sdp):
    """The Media an answer settles, given the offer we sent (either as bytes, str or parsed).
    Raises NoCommonCodec when the answer rejected our audio, ValueError when it is malformed or
    does not match the offer."""
    ans = parsed(answer_sdp)
    offer = parsed(offer_sdp)
    if len(ans.media) != len(offer.media):
        raise ValueError(
            "SDP answer has %d m= lines, the offer had %d" % (len(ans.media), len(offer.media))
        )
    for index, ours in enumerate(offer.media):
        if ours.media != "audio" or ours.port == 0:
            continue
        theirs = ans.media[index]
        if theirs.media != ours.media or theirs.proto.upper() != ours.proto.upper():
            raise ValueError("SDP answer m= line %d does not match the offer's" % (index + 1))
        if theirs.port == 0:
            raise NoCommonCodec("the answer rejected our audio stream")
        offered = [ours.codec(pt)[0].upper() for pt in ours.payload_types() if ours.codec(pt)]
        for pt in theirs.payload_types():  # the answerer's preference order
            entry = theirs.codec(pt)
            if entry is None or entry[1] != _CLOCK_RATE:
                continue
            name = entry[0].upper()
            if name in CODEC_PAYLOAD_TYPES and name in offered:
                break
        else:
            raise NoCommonCodec("the answer has none of the codecs we offered")
        media = Media(index, theirs, pt, name, _our_direction(ours.direction, theirs), False)
        media.rtcp_mux = ours.rtcp_mux and theirs.rtcp_mux
        if media.rtcp_mux:
            media.rtcp_address, media.rtcp_port = media.address, media.port
        our_event = _find_telephone_event(ours)
        if our_event is not None:
            media.telephone_event = _find_telephone_event(theirs)
            if media.telephone_event is not None:
                media.recv_telephone_event = our_event
        media.remote_session_id = ans.session_id
        media.remote_version = ans.session_version
        return media
    raise ValueError("our offer has no audio stream")
