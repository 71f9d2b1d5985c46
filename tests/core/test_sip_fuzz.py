# Malformed input never crashes the SIP parser: thousands of deterministic mutations of real
# messages either raise SipError or give a message whose every accessor works and which
# serializes to bytes that parse back to the same headers and body. Both runtimes run the
# same mutation sequence (a small LCG, not `random`, so the sequences are identical).
from checks import is_micropython
from mutation import Lcg, mutate

from voip.sip.message import (
    SipError,
    parse,
    response_for,
    validate_request,
    validate_response,
)

RUNTIMES = ("cpython", "micropython")
MICROPYTHON_HEAPSIZE = "512K"

SEEDS = [
    b"INVITE sip:bob@192.0.2.10:5060;transport=udp SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.7:5060;branch=z9hG4bKabc;rport, SIP/2.0/UDP [2001:db8::1]\r\n"
    b"Max-Forwards: 70\r\n"
    b'From: "Al \\"ice\\"" <sip:alice@192.0.2.7>;tag=a1\r\n'
    b"To: sip:bob@192.0.2.10\r\n"
    b"Call-ID: c1@192.0.2.7\r\nCSeq: 1 INVITE\r\n"
    b"Contact: <sip:alice@192.0.2.7:5060;lr?X=%20>;expires=60, sip:x@y;q=0.1\r\n"
    b"Require: timer\r\nAccept: application/sdp, text/*\r\n"
    b"Content-Type: application/sdp\r\nContent-Length: 10\r\n\r\nv=0\r\ns=-\r\n",
    b"SIP/2.0 401 Unauthorized\r\n"
    b"v: SIP/2.0/UDP 192.0.2.7;branch=z9hG4bK1\r\nf: <sip:a@h>;tag=1\r\nt: <sip:b@h>;tag=2\r\n"
    b"i: x@y\r\nCSeq: 2 REGISTER\r\n"
    b'WWW-Authenticate: Digest realm="r", nonce="n", qop="auth"\r\nl: 0\r\n\r\n',
    b"OPTIONS tel:+1-555;phone-context=x SIP/2.0\r\nVia: SIP/2.0/TCP h\r\n  ;branch=z9hG4bK2\r\n"
    b"From: sip:a@h;tag=9\r\nTo: <urn:x:y>\r\nCall-ID: z\r\nCSeq: 3 OPTIONS\r\n\r\n",
]

TOKENS = [b'"', b"<", b">", b",", b";", b":", b"%", b"%4", b"\r\n", b"\r\n ", b" ", b"\x00",
          b"\xff", b"\xc3\xa9", b"=", b"@", b"[", b"]", b"?", b"\\", b"SIP/2.0", b"\r\n\r\n",
          b"Content-Length: 99999\r\n", b"l: -1\r\n", b"CSeq: 4294967296 INVITE\r\n", b"9" * 12]


def without_length(headers):
    return [(n, v) for n, v in headers if n != "Content-Length"]


def exercise(msg):
    """Every accessor the stack uses; none may raise anything but SipError."""
    for name, _ in msg.headers:
        msg.get(name)
        msg.get_all(name)
    assert msg.call_id is not None
    assert msg.cseq[0] >= 0 and msg.top_via.host
    seen = (msg.from_tag, msg.to_tag, msg.top_via.branch, msg.content_type)
    assert len(seen) == 4
    if msg.is_request:
        validate_request(msg)
        response_for(msg, 200, to_tag="t").serialize()
    else:
        validate_response(msg)
    again = parse(msg.serialize())
    assert without_length(again.headers) == without_length(msg.headers)
    assert again.body == msg.body


def test_mutations_raise_sip_error_or_round_trip():
    rng = Lcg(20240601)
    count = 600 if is_micropython() else 3000
    parsed = rejected = 0
    for i in range(count):
        data = mutate(rng, SEEDS[i % len(SEEDS)], TOKENS)
        try:
            msg = parse(data)
        except SipError as e:
            assert e.status in (400, 413, 505, 513), e.status
            rejected += 1
            continue
        exercise(msg)
        parsed += 1
    assert parsed > count // 10 and rejected > count // 10, (parsed, rejected)


def test_seeds_themselves_parse_and_round_trip():
    for data in SEEDS:
        exercise(parse(data))
