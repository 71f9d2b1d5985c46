# SIP message parse/serialize, URIs, name-addr and Via: run under CPython and MicroPython.
from checks import raises

from voip.sip.message import (
    MAX_HEADER_LENGTH,
    MAX_HEADERS,
    MAX_MESSAGE_SIZE,
    NameAddr,
    Request,
    Response,
    SipError,
    Uri,
    Via,
    new_branch,
    new_call_id,
    new_tag,
    parse,
    response_for,
    validate_request,
    validate_response,
)

RUNTIMES = ("cpython", "micropython")
MICROPYTHON_HEAPSIZE = "256K"

SDP = (
    b"v=0\r\no=- 1 1 IN IP4 192.0.2.7\r\ns=-\r\nc=IN IP4 192.0.2.7\r\nt=0 0\r\n"
    b"m=audio 4000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n"
)

INVITE = (
    b"INVITE sip:bob@192.0.2.10:5060 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.7:5060;branch=z9hG4bKabc;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b'From: "Alice" <sip:alice@192.0.2.7>;tag=a1\r\n'
    b"To: <sip:bob@192.0.2.10>\r\n"
    b"Call-ID: c1@192.0.2.7\r\n"
    b"CSeq: 1 INVITE\r\n"
    b"Contact: <sip:alice@192.0.2.7:5060>\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: " + str(len(SDP)).encode() + b"\r\n\r\n" + SDP
)


def msg_with(*lines, body=b"", start=b"OPTIONS sip:bob@example.com SIP/2.0"):
    base = [
        start,
        b"Via: SIP/2.0/UDP 192.0.2.7;branch=z9hG4bK1",
        b"From: <sip:a@example.com>;tag=1",
        b"To: <sip:bob@example.com>",
        b"Call-ID: x@y",
        b"CSeq: 1 OPTIONS",
    ]
    return b"\r\n".join(base + list(lines)) + b"\r\n\r\n" + body


def test_parse_invite_fields():
    m = parse(INVITE)
    assert m.is_request and m.method == "INVITE" and m.uri == "sip:bob@192.0.2.10:5060"
    assert m.call_id == "c1@192.0.2.7"
    assert m.cseq == (1, "INVITE")
    assert m.from_tag == "a1" and m.to_tag is None
    assert m.from_addr.display == "Alice"
    v = m.top_via
    assert (v.transport, v.host, v.port, v.branch) == ("UDP", "192.0.2.7", 5060, "z9hG4bKabc")
    assert "rport" in v.params and v.params["rport"] is None
    assert m.body == SDP and m.content_type == "application/sdp"
    assert m.request_uri.host == "192.0.2.10" and m.request_uri.port == 5060


def test_serialize_round_trip_recomputes_content_length():
    m = parse(INVITE)
    again = parse(m.serialize())
    assert again.headers == m.headers and again.body == SDP
    m.body = b"v=0\r\n"
    out = m.serialize()
    assert b"\r\nContent-Length: 5\r\n\r\nv=0\r\n" in out
    assert out.count(b"Content-Length") == 1
    assert out.startswith(b"INVITE sip:bob@192.0.2.10:5060 SIP/2.0\r\n")


def test_response_line_and_empty_reason():
    r = parse(b"SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@h>;tag=1"
              b"\r\nTo: <sip:b@h>;tag=2\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\r\n")
    assert not r.is_request and r.status == 180 and r.reason == "Ringing" and r.to_tag == "2"
    r = Response(200)
    assert r.reason == "OK"
    assert Request("MESSAGE", "sip:a@h", body="h\u00e9").body == b"h\xc3\xa9"
    assert r.serialize() == b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n"


def test_compact_forms_and_case_insensitive_names():
    m = parse(msg_with(b"m: <sip:c@h>", b"k: 100rel", b"l: 0", b"X-Custom: 1"))
    assert m.get("Contact") == "<sip:c@h>" and m.get("contact") == "<sip:c@h>"
    assert m.get("Supported") == "100rel" and m.get("k") == "100rel"
    assert m.get("x-custom") == "1" and m.get("X-CUSTOM") == "1"
    names = [n for n, _ in m.headers]
    assert "Contact" in names and "Supported" in names and "X-Custom" in names


def test_folding_and_lws():
    m = parse(msg_with(b"Subject: first\r\n  second\r\n\tthird", b"Max-Forwards :  0068"))
    assert m.get("Subject") == "first second third"
    assert m.get("Max-Forwards") == "0068"


def test_list_headers_split_outside_quotes_and_brackets():
    m = parse(msg_with(
        b'Contact: "Smith, J" <sip:j@h;x=1,2>;q=0.5, <sip:k@h>',
        b"Contact: sip:l@h",
        b"Allow: INVITE, ACK,BYE",
        b"Allow: OPTIONS",
    ))
    contacts = m.get_all("Contact")
    assert contacts == ['"Smith, J" <sip:j@h;x=1,2>;q=0.5', "<sip:k@h>", "sip:l@h"]
    assert m.get_all("Allow") == ["INVITE", "ACK", "BYE", "OPTIONS"]
    assert m.get("Allow") == "INVITE"
    assert NameAddr.parse(contacts[0]).display == "Smith, J"


def test_via_list_top_via_and_insert():
    m = parse(msg_with(b"Via: SIP/2.0/UDP p2;branch=z9hG4bK2, SIP/2.0/TCP p3;branch=z9hG4bK3"))
    assert [Via.parse(v).host for v in m.get_all("Via")] == ["192.0.2.7", "p2", "p3"]
    m.insert("v", "SIP/2.0/UDP top;branch=z9hG4bK0")
    assert m.top_via.host == "top"
    assert m.headers[1][0] == "Via"
    m.remove("Via")
    assert m.get("Via") is None and m.get_all("via") == []


def test_set_add_remove():
    m = Request("OPTIONS", "sip:a@h", [("i", "x"), ("CSeq", "1 OPTIONS")])
    assert m.headers[0] == ("Call-ID", "x")
    m.add("Route", "<sip:p1;lr>")
    m.add("Route", "<sip:p2;lr>")
    m.set("route", "<sip:only;lr>")
    assert m.get_all("Route") == ["<sip:only;lr>"]
    m.set("Call-ID", "y")
    assert m.call_id == "y" and m.headers[0] == ("Call-ID", "y")
    with raises(SipError, match="line break"):
        m.add("Subject", "a\r\nInjected: 1")


def test_content_length_framing_over_udp():
    # trailing bytes after Content-Length are ignored
    m = parse(msg_with(b"Content-Length: 4", body=b"abcdEXTRA"))
    assert m.body == b"abcd"
    # missing Content-Length: the rest of the datagram
    m = parse(msg_with(body=b"whole rest"))
    assert m.body == b"whole rest"
    with raises(SipError, match="larger than body") as e:
        parse(msg_with(b"Content-Length: 40", body=b"short"))
    assert e.value.status == 400
    with raises(SipError, match="Content-Length"):
        parse(msg_with(b"Content-Length: -1", body=b"x"))
    with raises(SipError, match="conflicting"):
        parse(msg_with(b"Content-Length: 1", b"l: 2", body=b"xx"))
    m = parse(msg_with(b"Content-Length: 2", b"l: 2", body=b"xx"))
    assert m.body == b"xx"


def test_leading_crlf_and_bare_lf():
    m = parse(b"\r\n\r\n" + msg_with())
    assert m.method == "OPTIONS"
    assert parse(msg_with().decode()).call_id == "x@y"
    assert parse(bytearray(msg_with())).call_id == parse(memoryview(msg_with())).call_id
    m = parse(msg_with(b"l: 3", body=b"abc").replace(b"\r\n", b"\n"))
    assert m.cseq == (1, "OPTIONS") and m.body == b"abc"
    with raises(SipError, match="empty"):
        parse(b"\r\n\r\n")


def test_bounded_sizes():
    big = msg_with(body=b"x" * (MAX_MESSAGE_SIZE + 1))
    with raises(SipError) as e:
        parse(big)
    assert e.value.status == 513
    with raises(SipError) as e:
        parse(msg_with(b"Subject: " + b"a" * MAX_HEADER_LENGTH))
    assert e.value.status == 513
    many = [b"X-H%d: v" % i for i in range(MAX_HEADERS)]
    with raises(SipError, match="header fields") as e:
        parse(msg_with(*many))
    assert e.value.status == 513
    with raises(SipError) as e:
        parse(msg_with(body=b"x" * 9000))
    assert e.value.status == 413


def test_start_line_errors():
    with raises(SipError) as e:
        parse(msg_with(start=b"OPTIONS sip:a@h SIP/3.0"))
    assert e.value.status == 505
    for start in (b"OPTIONS  sip:a@h SIP/2.0", b"OPTIONS sip:a@h", b"OPTIONS <sip:a@h> SIP/2.0",
                  b"SIP/2.0 1000 Big", b"SIP/2.0 099 Low", b"OPT IONS sip:a@h SIP/2.0",
                  b"OPTI\"NS sip:a@h SIP/2.0"):
        with raises(SipError) as e:
            parse(msg_with(start=start))
        assert e.value.status == 400, start


def test_required_fields():
    good = msg_with()
    for name in (b"Call-ID", b"CSeq", b"From", b"To", b"Via"):
        lines = [ln for ln in good.split(b"\r\n") if not ln.startswith(name + b":")]
        with raises(SipError, match="missing"):
            parse(b"\r\n".join(lines))
    with raises(SipError, match="more than one To"):
        parse(msg_with(b"t: <sip:c@d>"))
    with raises(SipError, match="CSeq"):
        parse(msg_with(start=b"INVITE sip:a@h SIP/2.0"))
    with raises(SipError, match="Max-Forwards"):
        parse(msg_with(b"Max-Forwards: 256"))
    with raises(SipError, match="not UTF-8"):
        parse(msg_with(b"Subject: \xff\xfe"))


def test_uri_parse_and_str():
    u = Uri.parse("sips:alice:secret@Example.COM:5061;transport=tcp;lr?Subject=hi%20there&X=1")
    assert (u.scheme, u.user, u.password, u.host, u.port) == (
        "sips", "alice", "secret", "Example.COM", 5061)
    assert u.params == {"transport": "tcp", "lr": None}
    assert u.headers == {"Subject": "hi there", "X": "1"}
    assert str(u) == "sips:alice:secret@Example.COM:5061;transport=tcp;lr?Subject=hi%20there&X=1"
    u = Uri.parse("sip:[2001:db8::10]:5070")
    assert u.host == "2001:db8::10" and u.port == 5070 and str(u) == "sip:[2001:db8::10]:5070"
    assert u.address() == ("2001:db8::10", 5070)
    assert Uri.parse("sip:h").address() == ("h", 5060)
    t = Uri.parse("tel:+1-201-555-0123;phone-context=example.com")
    assert t.user == "+1-201-555-0123" and t.params == {"phone-context": "example.com"}
    assert t.host is None and str(t) == "tel:+1-201-555-0123;phone-context=example.com"
    o = Uri.parse("urn:service:sos")
    assert o.scheme == "urn" and o.opaque == "service:sos" and str(o) == "urn:service:sos"
    for bad in ("", "sip", "sip:", "sip:a@", "sip:h:0", "sip:h:65536", "sip:h:x", "1sip:h",
                "sip:a b@h", "sip:[::1", "sip:h;", "sip:%zz@h", "sip:[zz]", "sip:@h"):
        with raises(SipError):
            Uri.parse(bad)


def test_uri_escapes_decoded_once_and_reescaped():
    u = Uri.parse("sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31")
    assert u.user == "caller" and u.params == {"lr": None, "name": "value%41"}
    assert str(u) == "sip:caller@host5.example.net;lr;name=value%2541"
    n = Uri.parse("sip:null-%00-null@example.com")
    assert n.user == "null-\x00-null" and str(n) == "sip:null-%00-null@example.com"
    assert Uri.parse("sip:%00@h") != Uri.parse("sip:%00%00@h")


def test_uri_comparison_rfc3261():
    assert Uri.parse("sip:%61lice@atlanta.com;transport=TCP") == Uri.parse(
        "sip:alice@AtLanTa.CoM;Transport=tcp")
    assert Uri.parse("sip:carol@chicago.com") == Uri.parse(
        "sip:carol@chicago.com;newparam=5")
    assert Uri.parse("sip:alice@atlanta.com") != Uri.parse("sip:ALICE@atlanta.com")
    assert Uri.parse("sip:bob@biloxi.com") != Uri.parse("sip:bob@biloxi.com:5060")
    assert Uri.parse("sip:bob@biloxi.com") != Uri.parse("sip:bob@biloxi.com;transport=udp")
    assert Uri.parse("sip:a@h?X=1") != Uri.parse("sip:a@h")


def test_name_addr_forms():
    a = NameAddr.parse('"J Rosenberg \\\\\\""  <sip:jdrosen@example.com> ;  tag = 98asjd8')
    assert a.display == 'J Rosenberg \\"' and a.tag == "98asjd8"
    assert str(a) == '"J Rosenberg \\\\\\"" <sip:jdrosen@example.com>;tag=98asjd8'
    b = NameAddr.parse("sip:+19725552222@gw1.example.net;unknownparam")
    assert b.display is None and b.uri.params == {} and b.params == {"unknownparam": None}
    c = NameAddr.parse("<sip:+19725552222@gw1.example.net;unknownparam>")
    assert c.uri.params == {"unknownparam": None} and c.params == {}
    d = NameAddr.parse("caller<sip:caller@example.com>;tag=323")
    assert d.display == "caller" and d.tag == "323"
    e = NameAddr.parse("<sip:u@h>;+sip.instance=\"<urn:uuid:1>\";expires=60")
    assert e.params == {"+sip.instance": '"<urn:uuid:1>"', "expires": "60"}
    assert NameAddr.parse("isbn:2983792873").uri.scheme == "isbn"
    for bad in ('"unterminated <sip:a@h>', "Bell, Alexander <sip:a@h>", "< sip:a@h >",
                "sip:a@h?Route=x", "<sip:a@h>;;", "<sip:a@h", "<sip:a@h>;tag=", "",
                '"q" sip:a@h'):
        with raises(SipError):
            NameAddr.parse(bad)


def test_via_parse_and_str():
    v = Via.parse("SIP  /   2.0 /UDP 192.0.2.2;branch=390skdjuw")
    assert (v.transport, v.host, v.port, v.branch) == ("UDP", "192.0.2.2", None, "390skdjuw")
    v = Via.parse("SIP/2.0/tcp [2001:db8::9:1]:6050;received=[2001:db8::9:255];rport=7;branch=z")
    assert v.transport == "TCP" and v.host == "2001:db8::9:1" and v.port == 6050
    assert v.received == "[2001:db8::9:255]" and v.rport == 7 and v.sent_by() == (
        "2001:db8::9:1", 6050)
    v.params["received"] = "192.0.2.1"
    assert str(v) == "SIP/2.0/TCP [2001:db8::9:1]:6050;received=192.0.2.1;rport=7;branch=z"
    for bad in ("SIP/2.0/UDP", "SIP/3.0/UDP h", "SIP/2.0 UDP h", "SIP/2.0/UDP h;;",
                "SIP/2.0/UDP h:0"):
        with raises(SipError):
            Via.parse(bad)


def test_response_for_copies_what_8_2_6_2_says():
    req = parse(msg_with(b"Via: SIP/2.0/UDP p2;branch=z9hG4bK2", b"Timestamp: 54",
                         start=b"OPTIONS sip:bob@example.com SIP/2.0").replace(
                             b"CSeq: 1 OPTIONS", b"CSeq: 7 OPTIONS"))
    r = response_for(req, 200, to_tag="t9")
    assert r.status == 200 and r.reason == "OK"
    assert r.get_all("Via") == req.get_all("Via")
    assert r.to_tag == "t9" and r.from_tag == "1" and r.call_id == "x@y"
    assert r.cseq == (7, "OPTIONS")
    assert r.get("Timestamp") is None
    trying = response_for(req, 100, to_tag="t9")
    assert trying.to_tag is None and trying.get("Timestamp") == "54"
    back = parse(r.serialize())
    assert back.status == 200 and back.to_tag == "t9" and validate_response(back) is not None
    tagged = parse(msg_with().replace(b"To: <sip:bob@example.com>", b"To: <sip:b@h>;tag=old"))
    assert response_for(tagged, 486, to_tag="new").to_tag == "old"
    assert response_for(tagged, 486, "Busy").reason == "Busy"


def test_validate_request_and_response():
    assert validate_request(parse(msg_with())) is None
    assert validate_request(parse(msg_with(start=b"OPTIONS tel:+123 SIP/2.0"))) == (
        416, "Unsupported URI Scheme")
    assert validate_request(parse(msg_with(start=b"OPTIONS tel:+123 SIP/2.0")),
                            schemes=("sip", "tel")) is None
    assert validate_request(parse(msg_with(b"Require: timer")))[0] == 420
    assert validate_request(parse(msg_with(b"Require: timer")), supported=("timer",)) is None
    assert validate_request(parse(msg_with(b"Content-Type: text/plain", body=b"hi")))[0] == 415
    assert validate_request(parse(msg_with(b"l: 2", body=b"hi")))[0] == 400
    ok = parse(msg_with(start=b"SIP/2.0 200 OK"))
    assert validate_response(ok) is None


def test_identifiers_are_random_and_well_formed():
    b1, b2 = new_branch(), new_branch()
    assert b1.startswith("z9hG4bK") and b1 != b2 and len(b1) == 7 + 16
    assert new_tag() != new_tag() and len(new_tag()) == 16
    cid = new_call_id("192.0.2.7")
    assert cid.endswith("@192.0.2.7") and len(cid) == 24 + 1 + 9
