# RFC 4475 torture messages and RFC 5118 IPv6 messages, parsed in-process only (never sent over
# a socket: their Via hosts are TEST-NET addresses). Every file behaves as its INDEX.md says.
# Runs under CPython and the MicroPython unix port.
import hashlib

from checks import is_micropython, raises

from voip.sip.message import (
    NameAddr,
    SipError,
    Uri,
    Via,
    parse,
    unsupported_options,
    validate_request,
    validate_response,
)

RUNTIMES = ("cpython", "micropython")
MICROPYTHON_HEAPSIZE = "512K"


def _data_dir():
    if is_micropython():
        return "../data"  # the plugin runs MicroPython with cwd = this file's directory
    import os

    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data")


DATA = _data_dir()


def load(name, folder="rfc4475"):
    with open(DATA + "/" + folder + "/" + name, "rb") as f:
        return f.read()


def index_rows(folder):
    """(file, class) for every row of the INDEX.md table."""
    rows = []
    with open(DATA + "/" + folder + "/INDEX.md") as f:
        for line in f:
            if not line.startswith("|") or line.startswith("|---"):
                continue
            cells = [c.strip() for c in line.split("|")]
            if cells[1] != "file":
                rows.append((cells[1], cells[4]))
    return rows


# What each RFC 4475 message does here. "ok": parses and validate_request/response finds
# nothing; ("reject", status, text): parse raises SipError; ("answer", status): parses and
# validate_request answers status; "drop": a response validate_response discards.
EXPECT_4475 = {
    "wsinv.dat": "ok",
    "intmeth.dat": "ok",  # the UA then answers 501 to the unknown method
    "esc01.dat": "ok",
    "escnull.dat": "ok",
    "esc02.dat": "ok",  # RE%47IST%45R is not REGISTER: the UA answers 501
    "lwsdisp.dat": "ok",
    "longreq.dat": "ok",
    "dblreq.dat": "ok",
    "semiuri.dat": "ok",
    "transports.dat": "ok",
    "mpart01.dat": ("answer", 415),  # a valid MESSAGE whose multipart body a phone can't use
    "unreason.dat": "ok",
    "noreason.dat": "ok",
    "badinv01.dat": ("reject", 400, "empty parameter"),
    "clerr.dat": ("reject", 400, "Content-Length larger than body"),
    "ncl.dat": ("reject", 400, "bad Content-Length"),
    "scalar02.dat": ("reject", 400, "CSeq number out of range"),
    "scalarlg.dat": ("reject", 400, "CSeq number out of range"),  # a response: dropped
    "quotbal.dat": ("reject", 400, "unterminated quoted string"),
    "ltgtruri.dat": ("reject", 400, "bad Request-URI"),
    "lwsruri.dat": ("reject", 400, "malformed Request-Line"),
    "lwsstart.dat": ("reject", 400, "malformed Request-Line"),
    "trws.dat": ("reject", 400, "malformed Request-Line"),
    "escruri.dat": ("answer", 400),
    "baddate.dat": "ok",  # Date does not matter to a phone: ignored, as 3.1.2.12 allows
    "regbadct.dat": ("answer", 400),
    "badaspec.dat": ("reject", 400, "whitespace inside <URI>"),
    "baddn.dat": ("reject", 400, "must be quoted"),
    "badvers.dat": ("reject", 505, "unsupported SIP version"),
    "mismatch01.dat": ("reject", 400, "CSeq method does not match"),
    "mismatch02.dat": ("reject", 400, "CSeq method does not match"),
    "bigcode.dat": ("reject", 400, "bad status code"),
    "badbranch.dat": "ok",  # well-formed; the transaction layer matches it RFC 2543 style
    "insuf.dat": ("reject", 400, "missing Call-ID"),
    "unkscm.dat": ("answer", 416),
    "novelsc.dat": ("answer", 416),
    "unksm2.dat": ("answer", 400),  # REGISTER: To must be a SIP/SIPS AOR
    "bext01.dat": ("answer", 420),
    "invut.dat": ("answer", 415),
    "regaut01.dat": "ok",  # the registrar's digest check answers 401 (tests/core/test_sip_digest)
    "multi01.dat": ("reject", 400, "more than one"),
    "mcl01.dat": ("reject", 400, "conflicting Content-Length"),
    "bcast.dat": "drop",
    "zeromf.dat": "ok",  # a UAS processes Max-Forwards: 0 normally
    "cparam01.dat": "ok",
    "cparam02.dat": "ok",
    "regescrt.dat": "ok",
    "sdp01.dat": ("answer", 406),
    "inv2543.dat": "ok",
    "test.dat": ("reject", 400, "header line without ':'"),
}

EXPECT_5118 = {
    "ipv6-good": "ok",
    "ipv6-bad": ("reject", 400, "bad port"),
    "port-ambiguous": "ok",
    "port-unambiguous": "ok",
    "via-received-param-with-delim": "ok",
    "via-received-param-no-delim": "ok",
    "ipv6-in-sdp": "ok",
    "mult-ip-in-header": "ok",
    "mult-ip-in-sdp": "ok",
    "ipv4-mapped-ipv6": "ok",
    "ipv6-bug-abnf-3-colons": "ok",  # RFC 5118 4.10: tolerate
    "ipv6-correct-abnf-2-colons": "ok",
}


def outcome(data):
    """What the stack does with one datagram, in the terms of the EXPECT tables."""
    try:
        msg = parse(data)
    except SipError as e:
        return ("reject", e.status, str(e))
    if not msg.is_request:
        return "drop" if validate_response(msg) else "ok"
    answer = validate_request(msg)
    return "ok" if answer is None else ("answer", answer[0])


def check_all(folder, expect, suffix):
    rows = index_rows(folder)
    assert len(rows) == len(expect), (len(rows), len(expect))
    seen = 0
    for name, cls in rows:
        want = expect[name]
        got = outcome(load(name + suffix, folder))
        if isinstance(want, tuple) and want[0] == "reject":
            assert got[0] == "reject" and got[1] == want[1], (name, got)
            assert want[2] in got[2], (name, got)
        else:
            assert got == want, (name, got, want)
        # INDEX's class and our outcome agree: VALID never rejected, INVALID never plain ok
        # (except the "may reject / liberal may accept" cases that a phone ignores).
        if cls == "VALID":
            assert got == "ok" or got == ("answer", 415), name
        if cls == "INVALID":
            assert got != "ok" or name == "baddate.dat", name
        seen += 1
    return seen


def test_rfc4475_every_message_as_index_says():
    assert check_all("rfc4475", EXPECT_4475, "") == 50


def test_rfc5118_every_message_as_index_says():
    assert check_all("rfc5118", EXPECT_5118, ".dat") == 12


def test_copied_files_match_sha256sums():
    with open(DATA + "/rfc4475/SHA256SUMS") as f:
        lines = [ln.split() for ln in f if ln.strip()]
    assert len(lines) >= 50
    for digest, name in lines:
        got = hashlib.sha256(load(name)).digest()
        assert "".join("%02x" % b for b in got) == digest, name


def test_wsinv_short_tortuous_invite():
    m = parse(load("wsinv.dat"))
    assert m.method == "INVITE" and m.uri == "sip:vivekg@chair-dnrc.example.com;unknownparam"
    assert m.request_uri.params == {"unknownparam": None}
    assert m.to_tag == "1918181833n" and m.to_addr.uri.user == "vivekg"
    assert m.from_addr.display == 'J Rosenberg \\"' and m.from_tag == "98asjd8"
    assert m.get("Max-Forwards") == "0068" and m.cseq == (9, "INVITE")
    vias = [Via.parse(v) for v in m.get_all("Via")]
    assert [(v.transport, v.host, v.branch) for v in vias] == [
        ("UDP", "192.0.2.2", "390skdjuw"),
        ("TCP", "spindle.example.com", "z9hG4bK9ikj8"),
        ("UDP", "192.168.255.111", "z9hG4bK30239"),
    ]
    assert m.get("Subject") == ""
    assert m.get("NewFangledHeader") == "newfangled value continued newfangled value"
    assert m.get("unknownheaderwithunusualvalue") == ";;,,;;,;"
    assert m.get_all("Route") == [
        "<sip:services.example.com;lr;unknownwith=value;unknown-no-value>"]
    c = NameAddr.parse(m.get("Contact"))
    assert c.display == 'Quoted string ""' and c.uri.user == "jdrosen"
    assert c.params == {"newparam": "newvalue", "secondparam": None, "q": "0.33"}
    assert len(m.body) == 150 and m.body.startswith(b"v=0\r\n")


def test_intmeth_wide_range_of_valid_characters():
    m = parse(load("intmeth.dat"))
    assert m.method == "!interesting-Method0123456789_*+`.%indeed'~" == m.cseq[1]
    u = m.request_uri
    assert u.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert u.password == "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"
    assert u.host == "example.com" and u.params == {} and u.headers == {}
    assert m.to_addr.display == "BEL:\x07 NUL:\x00 DEL:\x7f"
    assert m.to_addr.uri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert m.from_addr.display == "token1~` token2'+_ token3*%!.-"
    assert m.from_tag == "_token~1'+`*%!-."
    word = "\u0440\u0430\u0431\u043e\u0442\u0430\u044e\u0449\u0438\u0439"
    assert m.from_addr.params["fromparam''~+*_!.-%"] == '"' + word + '"'
    assert m.call_id == "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"
    assert m.get("extensionheader-!.%*+_`'~") == "\ufeff\u5927\u505c\u96fb"
    assert m.top_via.branch == "z9hG4bK-.!%66*_+`'~"


def test_esc01_escapes_decoded_once():
    m = parse(load("esc01.dat"))
    u = m.request_uri
    assert u.user == "sips:user@example.com" and u.host == "example.net" and u.scheme == "sip"
    assert m.to_addr.uri.user == "user"
    assert m.from_addr.uri.user == "I have spaces"
    c = NameAddr.parse(m.get("Contact")).uri
    assert c.user == "caller" and c.params == {"lr": None, "name": "value%41"}
    assert m.content_type == "application/sdp"


def test_escnull_escaped_nulls_do_not_truncate():
    m = parse(load("escnull.dat"))
    assert m.to_addr.uri.user == "null-\x00-null"
    users = [NameAddr.parse(c).uri.user for c in m.get_all("Contact")]
    assert users == ["\x00", "\x00\x00"]
    a, b = (NameAddr.parse(c).uri for c in m.get_all("Contact"))
    assert a != b and str(a) == "sip:%00@host5.example.com"


def test_esc02_percent_that_is_not_an_escape():
    m = parse(load("esc02.dat"))
    assert m.method == "RE%47IST%45R" and m.method != "REGISTER"
    assert len(m.get_all("Contact")) == 2  # "C%6Fntact" is another header, not Contact
    assert m.get("C%6Fntact") == "<sip:alias2@host2.example.com>"
    assert m.to_addr.display == "%Z%45" and m.top_via.branch == "z9hG4bK209%fzsnel234"


def test_lwsdisp_longreq_semiuri_transports():
    assert parse(load("lwsdisp.dat")).from_addr.display == "caller"
    m = parse(load("longreq.dat"))
    vias = m.get_all("Via")
    assert len(vias) == 34 and Via.parse(vias[0]).host == "sip33.example.com"
    assert Via.parse(vias[-1]).branch.endswith("longbranchvalue")
    assert len(m.to_addr.display) == 103 and m.to_addr.uri.port == 6000
    assert len(m.to_addr.uri.params) == 3 and len(m.from_tag) == 155 and len(m.call_id) == 141
    m = parse(load("semiuri.dat"))
    u = m.request_uri
    assert u.user == "user;par=u@example.net" and u.host == "example.com" and u.params == {}
    assert m.get_all("Accept")[-1] == "message/sipfrag" and len(m.get_all("Accept")) == 6
    m = parse(load("transports.dat"))
    assert [Via.parse(v).transport for v in m.get_all("Via")] == [
        "UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]


def test_dblreq_trailing_octets_ignored():
    m = parse(load("dblreq.dat"))
    assert m.method == "REGISTER" and m.body == b"" and m.call_id.startswith("dblreq.0ha0")


def test_mpart01_binary_body_framed_by_content_length():
    data = load("mpart01.dat")
    m = parse(data)
    assert len(m.body) == 553 and b"\x00" in m.body
    assert m.body.count(b"\n") - m.body.count(b"\r\n") == 3  # the 3 bare LFs INDEX.md notes
    assert m.body.endswith(b"--7a9cbec02ceef655--\r\n") and data.endswith(m.body)
    assert m.content_type == "multipart/mixed"


def test_unreason_and_noreason():
    r = parse(load("unreason.dat"))
    assert r.status == 200 and r.reason.startswith("= 2**3 * 5**2 ")
    assert "\u0441\u0442\u043e" in r.reason and len(r.body) == 154
    r = parse(load("noreason.dat"))
    assert r.status == 100 and r.reason == ""


def test_semantic_cases_expose_the_fields_a_ua_needs():
    m = parse(load("badbranch.dat"))
    assert m.top_via.branch == "z9hG4bK"  # only the magic cookie
    m = parse(load("unkscm.dat"))
    assert m.request_uri.scheme == "nobodyknowsthisscheme"
    assert m.request_uri.opaque == "totallyopaquecontent"
    assert parse(load("novelsc.dat")).request_uri.scheme == "soap.beep"
    m = parse(load("unksm2.dat"))
    assert m.to_addr.uri.scheme == "isbn" and m.from_addr.uri.scheme == "http"
    assert NameAddr.parse(m.get("Contact")).uri.scheme == "name"
    m = parse(load("bext01.dat"))
    assert unsupported_options(m) == ["nothingSupportsThis", "nothingSupportsThisEither"]
    assert len(m.get_all("Proxy-Require")) == 2
    both = ("nothingsupportsthis", "nothingsupportsthiseither")
    assert validate_request(m, supported=both) is None
    r = parse(load("bcast.dat"))
    assert Via.parse(r.get_all("Via")[1]).host == "255.255.255.255"
    assert parse(load("zeromf.dat")).get("Max-Forwards") == "0"


def test_contact_param_versus_uri_param():
    c = NameAddr.parse(parse(load("cparam01.dat")).get("Contact"))
    assert c.params == {"unknownparam": None} and c.uri.params == {}
    c = NameAddr.parse(parse(load("cparam02.dat")).get("Contact"))
    assert c.params == {} and c.uri.params == {"unknownparam": None}
    assert str(c.uri) == "sip:+19725552222@gw1.example.net;unknownparam"
    c = NameAddr.parse(parse(load("regescrt.dat")).get("Contact"))
    assert c.uri.headers == {"Route": "<sip:sip.example.com>"}
    assert str(c.uri) == "sip:user@example.com?Route=%3Csip:sip.example.com%3E"
    with raises(SipError, match="enclosed in <>"):
        NameAddr.parse(parse(load("regbadct.dat")).get("Contact"))


def test_inv2543_rfc2543_syntax():
    data = load("inv2543.dat")
    m = parse(data)
    assert m.top_via.branch is None and m.from_tag is None and m.get("Max-Forwards") is None
    assert m.get("Content-Length") is None
    assert m.body.startswith(b"v=0\r\n") and data.endswith(m.body) and len(m.body) == 105
    assert m.to_addr.uri.params == {} and m.to_addr.params == {"user": "phone"}


def test_baddn_variant_with_terminating_crlf_fails_the_same_way():
    with raises(SipError, match="must be quoted"):
        parse(load("variants/baddn.crlf-terminated.dat"))


def test_rfc5118_ipv6_fields():
    m = parse(load("ipv6-good.dat", "rfc5118"))
    assert m.request_uri.host == "2001:db8::10" and m.request_uri.port is None
    assert m.top_via.host == "2001:db8::9:1"
    assert NameAddr.parse(m.get("Contact")).uri.host == "2001:db8::1"
    u = parse(load("port-ambiguous.dat", "rfc5118")).request_uri
    assert (u.host, u.port) == ("2001:db8::10:5070", None)
    u = parse(load("port-unambiguous.dat", "rfc5118")).request_uri
    assert (u.host, u.port) == ("2001:db8::10", 5070)
    v = parse(load("via-received-param-with-delim.dat", "rfc5118")).top_via
    assert v.received == "[2001:db8::9:255]"
    v = parse(load("via-received-param-no-delim.dat", "rfc5118")).top_via
    assert v.received == "2001:db8::9:255" and v.branch == "z9hG4bKas3"
    vias = [Via.parse(x) for x in parse(load("mult-ip-in-header.dat", "rfc5118")).get_all("Via")]
    assert [(x.host, x.port) for x in vias] == [
        ("2001:db8::9:1", 6050), ("192.0.2.1", None), ("2001:db8::9:255", None)]
    assert vias[2].received == "192.0.2.200"
    m = parse(load("ipv4-mapped-ipv6.dat", "rfc5118"))
    assert m.top_via.host == "::ffff:192.0.2.10" and m.top_via.port == 19823
    assert b"IP6" in m.body or b"ffff" in m.body
    assert parse(load("ipv6-in-sdp.dat", "rfc5118")).body.count(b"IP6") >= 1
    u = parse(load("ipv6-bug-abnf-3-colons.dat", "rfc5118")).request_uri
    assert u.host == "2001:db8:::192.0.2.1"
    assert str(Uri.parse("sip:user@[2001:db8::192.0.2.1]")) == "sip:user@[2001:db8::192.0.2.1]"
