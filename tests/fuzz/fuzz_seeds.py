# tests/fuzz/fuzz_seeds.py: what real peers send, as bytes, to start every fuzzer from: SIP
# requests and responses, SDP offers, RTP and RTCP packets, digest credentials. Constants only,
# so a small MicroPython heap can hold them. The addresses are TEST-NET ones: these bytes are
# parsed in process and never sent. MIT licence.

# -- seeds: what real peers send --------------------------------------------------------------

SDP_OFFER = (
    b"v=0\r\no=alice 2890844526 2890844526 IN IP4 192.0.2.7\r\ns=-\r\n"
    b"c=IN IP4 192.0.2.7\r\nt=0 0\r\nm=audio 49170 RTP/AVP 0 8 101\r\n"
    b"a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
    b"a=fmtp:101 0-15\r\na=ptime:20\r\na=sendrecv\r\n"
)
SDP_SEEDS = [
    SDP_OFFER,
    b"v=0\no=- 1 2 IN IP6 2001:db8::1\ns=x\nc=IN IP6 2001:db8::1\nt=0 0\n"
    b"m=video 5000 RTP/AVP 96\na=rtpmap:96 H264/90000\n"
    b"m=audio 5002 RTP/SAVPF 8\na=rtcp-mux\na=rtcp:5003 IN IP6 2001:db8::2\na=recvonly\n",
    b"v=0\r\no=x 1 1 IN IP4 0.0.0.0\r\ns= \r\nt=0 0\r\nm=audio 0 RTP/AVP 18\r\n"
    b"c=IN IP4 0.0.0.0\r\na=maxptime:40\r\na=inactive\r\n",
]

_VIA = b"Via: SIP/2.0/UDP 192.0.2.7:5060;branch=z9hG4bK%s;rport\r\n"
_DIALOG = (b"From: <sip:alice@192.0.2.7>;tag=a1\r\nTo: <sip:ua@127.0.0.1>%s\r\n"
           b"Call-ID: c1@192.0.2.7\r\n")


def _request(method, cseq, to_tag=b"", body=b"", extra=b"", branch=b"1"):
    head = b"%s sip:ua@127.0.0.1:5060 SIP/2.0\r\n" % method
    head += _VIA % branch + b"Max-Forwards: 70\r\n" + _DIALOG % to_tag
    head += b"CSeq: %d %s\r\n" % (cseq, method) + extra
    if body:
        head += b"Content-Type: application/sdp\r\n"
    return head + b"Content-Length: %d\r\n\r\n" % len(body) + body


SIP_SEEDS = [
    _request(b"INVITE", 1, body=SDP_OFFER, extra=b"Contact: <sip:alice@192.0.2.7:5060>\r\n"),
    _request(b"OPTIONS", 2, extra=b"Accept: application/sdp\r\n", branch=b"2"),
    _request(b"ACK", 1, to_tag=b";tag=u1", branch=b"3"),
    _request(b"BYE", 3, to_tag=b";tag=u1", branch=b"4"),
    _request(b"CANCEL", 1),
    _request(b"INVITE", 4, to_tag=b";tag=u1", body=SDP_OFFER, branch=b"5",
             extra=b"Contact: <sip:alice@192.0.2.7>\r\nRequire: timer\r\n"),
    _request(b"REGISTER", 5, branch=b"6",
             extra=b'Authorization: Digest username="a", realm="r", nonce="n", uri="sip:x",'
                   b' response="0123456789abcdef0123456789abcdef", qop=auth, nc=00000001,'
                   b' cnonce="c"\r\nContact: *\r\nExpires: 0\r\n'),
    b"SIP/2.0 200 OK\r\n" + _VIA % b"x" + _DIALOG % b";tag=u2" + b"CSeq: 1 OPTIONS\r\n"
    b"Content-Length: 0\r\n\r\n",
    b"SIP/2.0 401 Unauthorized\r\n" + _VIA % b"y" + _DIALOG % b";tag=u3"
    + b'CSeq: 2 REGISTER\r\nWWW-Authenticate: Digest realm="r", nonce="n", qop="auth",'
    b" algorithm=MD5, stale=true\r\nl: 0\r\n\r\n",
]

RTP_SEEDS = [
    b"\x80\x00\x00\x01\x00\x00\x00\xa0\x12\x34\x56\x78" + b"\xff" * 160,
    b"\x92\x88\x00\x02\x00\x00\x01\x40\x12\x34\x56\x78\x00\x00\x00\x01\x00\x00\x00\x02"
    b"\xbe\xde\x00\x01\x10\xaa\x00\x00" + b"\xd5" * 160,
    b"\xa0\xe5\x00\x03\x00\x00\x01\xe0\x12\x34\x56\x78\x05\x0a\x01\x40\x00\x00\x00\x04",
]

RTCP_SEEDS = [
    # SR with one report block, then SDES CNAME
    b"\x81\xc8\x00\x0c\x12\x34\x56\x78" + bytes(range(20)) + b"\x9a\xbc\xde\xf0" + bytes(20)
    + b"\x81\xca\x00\x03\x12\x34\x56\x78\x01\x03abc\x00\x00\x00",
    b"\x80\xc9\x00\x01\x12\x34\x56\x78",  # empty RR
    b"\xa1\xcb\x00\x03\x12\x34\x56\x78\x03bye\x00\x00\x00\x04",  # padded BYE with a reason
    b"\x81\xcd\x00\x02\x00\x00\x00\x01\x00\x00\x00\x02",  # RTPFB
]

DIGEST_SEEDS = [
    b'Digest username="kitchen", realm="sipmote", nonce="1a2b.0102030405ab.00", '
    b'uri="sip:127.0.0.1:5060", response="00112233445566778899aabbccddeeff", qop=auth, '
    b'nc=00000001, cnonce="xyz", algorithm=MD5, opaque="o"',
    b'Digest realm="r", nonce="n", algorithm=SHA-256, qop="auth,auth-int", stale=TRUE',
    b"Basic dXNlcjpwYXNz",
]
