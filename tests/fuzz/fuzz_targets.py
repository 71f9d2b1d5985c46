# tests/fuzz/fuzz_targets.py: one checker per hostile-input surface of the shared core, used by
# the hypothesis properties (CPython), the atheris runner (`make fuzz`) and the MicroPython
# mutation run alike. MIT licence.
#
# Each check_*(data) feeds bytes to the real code and asserts what must hold for ANY input:
# only the documented exception type leaves a parser, what parses serializes to something that
# parses back the same, what the user agent sends is well-formed SIP addressed to the source,
# and its tables stay bounded. Everything runs in process: no socket is touched (the seeds'
# addresses are TEST-NET ones and must never be sent to).
from fuzz_seeds import DIGEST_SEEDS, RTCP_SEEDS, RTP_SEEDS, SDP_SEEDS, SIP_SEEDS  # noqa: F401

from voip import rtcp, rtp, sdp
from voip.dtmf import DtmfReceiver
from voip.jitter import DUPLICATE, LATE, REJECTED, STORED, JitterBuffer
from voip.rtcp_stats import ReceiverStats
from voip.sdp_description import SessionDescription, _decode
from voip.sip import digest
from voip.sip.message import (
    SipError,
    parse,
    response_for,
    validate_request,
    validate_response,
)
from voip.sip.transaction import error_response, response_address

SIP_STATUSES = (400, 413, 505, 513)

# -- parsers ----------------------------------------------------------------------------------


def _without_length(headers):
    return [(n, v) for n, v in headers if n != "Content-Length"]


def _try(view):
    try:
        view()
    except SipError:
        pass


def check_error_response(wire, request_size):
    """The 400/505/513 built from a request parse() refused copies that request's raw Via,
    From, To, Call-ID and CSeq (so the client can match it), which may be as broken as they
    came: it need not parse, but it must be one status line and header lines with no line
    break smuggled into a value, and no bigger than the request plus our own lines (a reflector,
    not an amplifier)."""
    wire = bytes(wire)
    assert wire[:8] == b"SIP/2.0 " and wire[8:11].isdigit() and wire[8:9] in b"45", wire[:40]
    head, sep, body = wire.partition(b"\r\n\r\n")
    assert sep and body == b""
    for line in head.split(b"\r\n"):
        assert b"\r" not in line and b"\n" not in line
    assert len(wire) <= request_size + 160, (len(wire), request_size)


def check_sip(data):
    """parse() raises only SipError with a status we can answer; what it returns serves every
    accessor the stack uses and round-trips; the error response built from raw bytes parses."""
    try:
        msg = parse(data)
    except SipError as e:
        assert e.status in SIP_STATUSES, e.status
        resp = error_response(data, e)
        if resp is not None:
            check_error_response(resp.serialize(), len(data))
            host, port = response_address(resp.get("Via"), ("127.0.0.1", 5099))
            assert host == "127.0.0.1" and 0 <= port <= 65535, (host, port)
        return False
    for name, _ in msg.headers:
        msg.get(name)
        msg.get_all(name)
    assert msg.call_id is not None and msg.cseq[0] >= 0 and msg.top_via.host
    _try(lambda: msg.from_tag)
    _try(lambda: msg.to_tag)
    assert msg.content_type is None or msg.content_type == msg.content_type.lower()
    assert msg.top_via.branch is None or isinstance(msg.top_via.branch, str)
    if msg.is_request:
        _try(lambda: msg.request_uri)
        problem = validate_request(msg)
        status = 200 if problem is None else problem[0]
        parse(response_for(msg, status, to_tag="t").serialize())
    else:
        validate_response(msg)
    wire = msg.serialize()
    again = parse(wire)
    assert _without_length(again.headers) == _without_length(msg.headers)
    assert again.body == msg.body
    assert again.serialize() == wire
    return True


def check_sdp(data):
    """The SDP parser raises only ValueError (asked of its inner parse, so that a bug cannot
    hide behind parse()'s catch-all), and an offer we answer gives an answer that parses, with
    one m= line per offered one."""
    try:
        offer = SessionDescription._parse(_decode(data))
    except ValueError:
        return False
    for section in offer.media:
        section.payload_types()
        for pt in section.payload_types():
            section.codec(pt)
        section.is_rtp()
    try:
        body, media = sdp.answer(offer, "127.0.0.1", 40000)
    except ValueError:  # NoCommonCodec included
        return False
    back = SessionDescription.parse(body)
    assert len(back.media) == len(offer.media)
    if len(offer.media) == 1:
        # what our own offers look like (accept_answer reads an answer to OUR offer, which
        # never carries the unusable streams answer() skips): both sides settle alike
        settled = sdp.accept_answer(body, offer)
        assert settled.codec == media.codec, (settled.codec, media.codec)
    return True


def check_rtp(data):
    """RtpHeader.unpack_from and parse raise only ValueError; parse/serialize round-trips."""
    header = rtp.RtpHeader()
    try:
        start = header.unpack_from(data)
    except ValueError:
        try:
            rtp.parse(data)
        except ValueError:
            return False
        raise AssertionError("unpack_from refused what parse() took") from None
    assert 12 <= start <= len(data) and start + header.payload_length <= len(data)
    packet = rtp.parse(data)
    again = rtp.parse(packet.serialize())
    assert again.payload == packet.payload and again.csrc == packet.csrc
    assert (again.sequence, again.timestamp, again.ssrc, again.marker, again.payload_type) == (
        packet.sequence, packet.timestamp, packet.ssrc, packet.marker, packet.payload_type)
    assert again.extension == packet.extension
    return True


def check_rtcp(data):
    """rtcp.parse raises only ValueError; what parses serializes to a fixpoint."""
    try:
        packets = rtcp.parse(data)
    except ValueError:
        return False
    for packet in packets:
        repr(packet)
        if isinstance(packet, rtcp.SourceDescription):
            packet.cname()
    wire = rtcp.serialize(packets)
    assert rtcp.serialize(rtcp.parse(wire)) == wire
    return True


_REALM = "sipmote"
_SERVER = digest.DigestServer(_REALM, secret=b"k" * 32, algorithms=("SHA-256", "MD5"))


def check_digest(data):
    """A hostile Authorization value: parse_auth/parse_challenge raise only SipError and
    verify() never raises and never admits (no one knows the password)."""
    try:
        text = bytes(data).decode()
    except UnicodeError:
        return False
    try:
        digest.parse_auth(text)
        digest.parse_challenge(text)
    except SipError:
        pass
    ok, _user, _stale, _reason = _SERVER.verify(
        "INVITE", text, lambda user: "a secret nobody guesses", 1000,
        accept_uri=digest.uri_acceptor("sip:assistant@127.0.0.1", ["127.0.0.1"], 5060))
    assert not ok
    return True


def check_media_stream(data):
    """A hostile RTP stream (4 bytes per packet: seq, ts step, length, flags) into the jitter
    buffer, the receiver statistics and the DTMF receiver: none raises, counters add up."""
    buf = JitterBuffer(slots=8, min_ms=20, max_ms=100)
    stats = ReceiverStats()
    keys = DtmfReceiver()
    out = bytearray(160)
    payload = bytes(range(256)) * 8
    seq = ts = arrival = 0
    results = {STORED: 0, DUPLICATE: 0, LATE: 0, REJECTED: 0}
    for i in range(0, len(data) - 3, 4):
        a, b, c, d = data[i], data[i + 1], data[i + 2], data[i + 3]
        seq = (seq + a - 64) & 0xFFFF
        ts = (ts + (b - 16) * 160) & 0xFFFFFFFF
        length = 160 * (c & 3) + (c >> 2 if d & 1 else 0)
        arrival += d >> 1
        results[buf.put(seq, ts, payload, arrival, 0, length)] += 1
        stats.receive(seq, ts, arrival)
        keys.receive(d & 2, ts, payload[c:], 0, c & 7)
        if d & 4:
            buf.get(out)
    assert (results[LATE], results[DUPLICATE], results[REJECTED]) == (
        buf.late, buf.duplicates, buf.rejected)
    assert buf.depth_ms <= buf.slots * buf.frame_ms and 0 <= stats.loss_fraction() <= 1
    return True
