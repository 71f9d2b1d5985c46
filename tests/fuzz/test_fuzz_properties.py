# Property-based fuzzing (hypothesis, CPython) of every parser that meets hostile bytes: SIP
# messages, SDP, RTP, RTCP, digest credentials, an RTP stream into the jitter buffer, and the
# SIP user agent fed whole sequences of datagrams. Inputs are real messages mutated at the byte
# level and messages built from the grammar's pieces with hostile values; the invariants live
# in fuzz_targets.py / fuzz_ua.py, shared with `make fuzz` (atheris) and the MicroPython run.
#
# The suite runs a bounded, derandomized number of examples per property (reproducible);
# SIPMOTE_FUZZ_EXAMPLES=N (as `make fuzz` sets it) runs N random ones instead.
# tests/core/test_sip_fuzz.py covers message parse with a fixed mutation sequence on both
# runtimes; this goes further (accessors, error responses, the rest of the stack).
import os

from fuzz_seeds import DIGEST_SEEDS, RTCP_SEEDS, RTP_SEEDS, SDP_SEEDS, SIP_SEEDS
from fuzz_targets import (
    check_digest,
    check_media_stream,
    check_rtcp,
    check_rtp,
    check_sdp,
    check_sip,
)
from fuzz_ua import check_ua, split_datagrams
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from voip import rtcp, rtp

_LONG = int(os.environ.get("SIPMOTE_FUZZ_EXAMPLES", "0"))
FUZZ = settings(
    max_examples=_LONG or 300,
    deadline=None,
    derandomize=not _LONG,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

TOKENS = [b'"', b"<", b">", b",", b";", b":", b"%", b"%0", b"\r\n", b"\r\n ", b"\n", b"\r",
          b" ", b"\t", b"\x00", b"\xff", b"\xc3", b"=", b"@", b"[", b"]", b"?", b"\\",
          b"SIP/2.0", b"\r\n\r\n", b"tag=", b";branch=z9hG4bK", b";rport", b";received=",
          b"Content-Length: 99999\r\n", b"l: -1\r\n", b"CSeq: 4294967296 INVITE\r\n",
          b"9" * 20, b"sip:", b"sips:", b"tel:", b"<sip:[::1]:5060>", b"To: <sip:x@y>;tag=a\r\n",
          b"Require: 100rel\r\n", b"Contact: *\r\n", b"v=", b"m=audio ", b"a=rtpmap:",
          b"RTP/AVP ", b"IN IP4 ", b"IN IP6 ", b"\x80", b"\x81\xc8", b"\x00\x00\x00\x00"]


def pieces(alphabet, max_size):
    """Text made of `alphabet`'s entries (single characters or whole tokens)."""
    return st.lists(st.sampled_from(alphabet), max_size=max_size).map("".join)


@st.composite
def mutated(draw, seeds):
    """A real message with a few byte-level edits: set, insert a token or random bytes,
    delete a run, cut the rest, or repeat a line."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 5))):
        kind = draw(st.integers(0, 5))
        pos = draw(st.integers(0, len(data)))
        if kind == 0 and data:
            data[min(pos, len(data) - 1)] = draw(st.integers(0, 255))
        elif kind == 1:
            data[pos:pos] = draw(st.sampled_from(TOKENS))
        elif kind == 2:
            del data[pos : pos + draw(st.integers(1, 24))]
        elif kind == 3:
            del data[pos:]
        elif kind == 4:
            start = data.rfind(b"\n", 0, pos) + 1
            end = data.find(b"\n", pos)
            if end >= 0:
                data[end + 1 : end + 1] = data[start : end + 1]
        else:
            data[pos:pos] = draw(st.binary(max_size=12))
    return bytes(data)


_SIP_CHARS = list("abcxyz019 :;,<>\"\\@=?%[]/.\t*+-_!~'()&$#") + [
    "sip:", "sips:", "z9hG4bK", "tag=", "\r\n ", "%25", "%00", "\u00e9", "\u4e2d"]
_HEADERS = ["Via", "v", "From", "f", "To", "t", "Call-ID", "i", "CSeq", "Contact", "m",
            "Content-Length", "l", "Content-Type", "c", "Max-Forwards", "Route",
            "Record-Route", "Require", "Supported", "Expires", "Accept", "Authorization",
            "WWW-Authenticate", "Proxy-Require", "Allow", "X-Anything", "k", "e"]
_METHODS = ["INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "INFO", "UPDATE", "X-FOO",
            "invite", ""]


@st.composite
def built_sip(draw):
    """A message built from the grammar's pieces with hostile values in every slot."""
    value = pieces(_SIP_CHARS, 30)
    if draw(st.booleans()):
        line = "%s %s SIP/2.0" % (draw(st.sampled_from(_METHODS)), draw(value))
    else:
        line = "SIP/2.0 %d %s" % (draw(st.integers(0, 1000)), draw(value))
    lines = [line]
    base = [
        ("Via", "SIP/2.0/UDP %s;branch=z9hG4bK%s" % (draw(value), draw(value))),
        ("From", "<sip:a@%s>;tag=%s" % (draw(value), draw(value))),
        ("To", draw(value)),
        ("Call-ID", draw(value)),
        ("CSeq", "%d %s" % (draw(st.integers(-1, 2**32)), draw(st.sampled_from(_METHODS)))),
    ]
    for name, val in base:
        if draw(st.integers(0, 9)):  # usually present
            lines.append("%s: %s" % (name, val))
    for _ in range(draw(st.integers(0, 6))):
        lines.append("%s:%s" % (draw(st.sampled_from(_HEADERS)), draw(value)))
    body = draw(st.binary(max_size=40))
    if draw(st.booleans()):
        lines.append("Content-Length: %d" % draw(st.integers(0, 60)))
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@st.composite
def built_sdp(draw):
    letters = st.sampled_from(list("vosicbtmaekzru") + ["x", "", "mm"])
    value = pieces(list("0123456789 IN IP4 RTP/AVP audio:/.-")
                   + ["rtpmap:", "PCMU/8000", "fmtp:", "rtcp-mux", "sendonly",
                      "telephone-event/8000", "127.0.0.1", "::1", "\u00e9"], 40)
    lines = ["v=0", "o=- 1 1 IN IP4 127.0.0.1", "s=-"]
    for _ in range(draw(st.integers(0, 12))):
        lines.append("%s=%s" % (draw(letters), draw(value)))
    sep = draw(st.sampled_from(["\r\n", "\n"]))
    return sep.join(lines).encode()


@st.composite
def built_rtp(draw):
    u32 = st.integers(0, 2**32 - 1)
    has_ext = draw(st.booleans())
    return rtp.RtpPacket(
        payload_type=draw(st.integers(0, 127)),
        marker=draw(st.integers(0, 1)),
        sequence=draw(st.integers(0, 0xFFFF)),
        timestamp=draw(u32),
        ssrc=draw(u32),
        payload=draw(st.binary(max_size=200)),
        csrc=draw(st.lists(u32, max_size=15)),
        extension_profile=draw(st.integers(0, 0xFFFF)) if has_ext else None,
        extension=draw(st.binary(max_size=12).map(lambda b: b[: len(b) // 4 * 4]))
        if has_ext else None,
        padding_length=draw(st.integers(0, 255)),
    )


@st.composite
def built_rtcp(draw):
    u32 = st.integers(0, 2**32 - 1)
    block = st.builds(rtcp.ReportBlock, u32, st.integers(0, 255),
                      st.integers(-0x800000, 0x7FFFFF), u32, u32, u32, u32)
    blocks = st.lists(block, max_size=3)
    items = st.lists(st.tuples(st.integers(1, 8), st.binary(max_size=20)), max_size=3)
    kinds = st.one_of(
        st.builds(rtcp.SenderReport, u32, st.integers(0, 2**64 - 1), u32, u32, u32, blocks),
        st.builds(rtcp.ReceiverReport, u32, blocks),
        st.builds(lambda chunks: rtcp.SourceDescription(chunks),
                  st.lists(st.tuples(u32, items), max_size=3)),
        st.builds(rtcp.Bye, st.lists(u32, max_size=4),
                  st.one_of(st.none(), st.binary(max_size=30))),
    )
    return draw(st.lists(kinds, min_size=1, max_size=4))


@st.composite
def built_credentials(draw):
    names = st.sampled_from(["username", "realm", "nonce", "uri", "response", "qop", "nc",
                             "cnonce", "algorithm", "opaque", "stale", "", "x"])
    values = st.one_of(
        pieces(list('abc019.,=" \\') + ["sipmote", "MD5", "SHA-256", "auth", "00000001"], 40),
        st.just("1a2b.0102030405ab." + "0" * 32))
    parts = []
    for _ in range(draw(st.integers(0, 10))):
        v = draw(values)
        parts.append("%s=%s" % (draw(names), '"%s"' % v if draw(st.booleans()) else v))
    return (draw(st.sampled_from(["Digest ", "digest", "Basic ", ""])) + ", ".join(parts)).encode()


# -- the properties ---------------------------------------------------------------------------


@FUZZ
@given(st.one_of(mutated(SIP_SEEDS), built_sip(), st.binary(max_size=300)))
@example(b"INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\r\n\r\n")
def test_sip_message_parse(data):
    check_sip(data)


@FUZZ
@given(st.one_of(mutated(SDP_SEEDS), built_sdp(), st.binary(max_size=200)))
def test_sdp_parse_and_answer(data):
    check_sdp(data)


@FUZZ
@given(st.one_of(mutated(RTP_SEEDS), st.binary(max_size=80)))
def test_rtp_parse(data):
    check_rtp(data)


@FUZZ
@given(built_rtp())
def test_rtp_built_packets_round_trip_exactly(packet):
    wire = packet.serialize()
    assert check_rtp(wire)
    again = rtp.parse(wire)
    assert again.serialize() == wire
    assert (again.padding_length, again.extension_profile) == (
        packet.padding_length, packet.extension_profile)


@FUZZ
@given(st.one_of(mutated(RTCP_SEEDS), st.binary(max_size=120)))
def test_rtcp_parse(data):
    check_rtcp(data)


@FUZZ
@given(built_rtcp())
def test_rtcp_built_compounds_round_trip_exactly(packets):
    wire = rtcp.serialize(packets)
    assert check_rtcp(wire)
    assert rtcp.serialize(rtcp.parse(wire)) == wire


@FUZZ
@given(st.one_of(mutated(DIGEST_SEEDS), built_credentials()))
def test_digest_credentials(data):
    check_digest(data)


@FUZZ
@given(st.binary(min_size=4, max_size=800))
def test_rtp_stream_into_jitter_buffer_stats_and_dtmf(data):
    check_media_stream(data)


_DATAGRAM = st.one_of(mutated(SIP_SEEDS), built_sip(), st.sampled_from(SIP_SEEDS))


@settings(FUZZ, max_examples=_LONG or 150)
@given(st.lists(st.tuples(_DATAGRAM, st.booleans()), min_size=1, max_size=12))
def test_user_agent_survives_datagram_sequences(datagrams):
    check_ua(datagrams)


def test_split_datagrams_frames_fuzzer_input():
    assert split_datagrams(b"\x04abcdefgh\x05xyz") == [(b"abcdefgh", False), (b"xyz", True)]
    assert split_datagrams(b"\x00rest") == [(b"rest", False)]
