# Digest authentication, client and server: RFC test vectors and server behaviour (expiring
# nonces, stale, replayed nonce counts, the uri the client hashed). CPython and MicroPython.
from checks import raises

from voip.sip.digest import (
    DigestClient,
    DigestServer,
    authorization,
    ha1,
    hmac_sha256,
    parse_auth,
    parse_challenge,
    uri_acceptor,
)
from voip.sip.message import SipError, parse

RUNTIMES = ("cpython", "micropython")
MICROPYTHON_HEAPSIZE = "256K"

RFC7616 = {
    "realm": "http-auth@example.org",
    "nonce": "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
    "qop": ["auth", "auth-int"],
    "opaque": "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS",
}
CNONCE_7616 = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"
USERS = {"alice": "s3cret", "Mufasa": "Circle Of Life"}


def lookup(user):
    return USERS.get(user)


def test_rfc2617_mufasa_vector():
    challenge = parse_challenge(
        'Digest realm="testrealm@host.com", qop="auth,auth-int", '
        'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"')
    assert challenge["qop"] == ["auth", "auth-int"] and challenge["algorithm"] == "MD5"
    assert challenge["stale"] is False
    value = authorization(challenge, "GET", "/dir/index.html", "Mufasa", "Circle Of Life",
                          nc=1, cnonce="0a4f113b")
    scheme, p = parse_auth(value)
    assert scheme == "Digest" and p["response"] == "6629fae49393a05397450978507c4ef1"
    assert p["qop"] == "auth" and p["nc"] == "00000001" and p["cnonce"] == "0a4f113b"
    assert p["opaque"] == "5ccc069c403ebaf9f0171e9517f40e41" and p["uri"] == "/dir/index.html"


def test_rfc7616_md5_and_sha256_vectors():
    c = dict(RFC7616, algorithm="MD5")
    p = parse_auth(authorization(c, "GET", "/dir/index.html", "Mufasa", "Circle of Life",
                                 1, CNONCE_7616))[1]
    assert p["response"] == "8ca523f5e9506fed4657c9700eebdbec"
    c = dict(RFC7616, algorithm="SHA-256")
    p = parse_auth(authorization(c, "GET", "/dir/index.html", "Mufasa", "Circle of Life",
                                 1, CNONCE_7616))[1]
    assert p["response"] == "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
    assert p["algorithm"] == "SHA-256"


def test_no_qop_legacy_and_sess():
    c = {"realm": "testrealm@host.com", "nonce": "dcd98b7102dd2f0e8b11d0f600bfb0c093"}
    p = parse_auth(authorization(c, "GET", "/dir/index.html", "Mufasa", "Circle Of Life"))[1]
    assert "qop" not in p and "nc" not in p and "cnonce" not in p
    assert p["response"] == "670fd8c2df070c60b045671b8b24ff02"
    c["algorithm"] = "MD5-sess"
    p1 = parse_auth(authorization(c, "GET", "/", "u", "pw", cnonce="a"))[1]
    p2 = parse_auth(authorization(c, "GET", "/", "u", "pw", cnonce="b"))[1]
    assert p1["response"] != p2["response"] and p1["cnonce"] == "a"
    with raises(SipError, match="algorithm"):
        authorization(dict(c, algorithm="SHA-512-256"), "GET", "/", "u", "pw")
    with raises(SipError, match="qop"):
        authorization(dict(c, algorithm="MD5", qop=["auth-int"]), "GET", "/", "u", "pw")


def test_parse_challenge_forms():
    c = parse_challenge('Digest realm="a\\"b", nonce=xyz,algorithm=SHA-256,stale=TRUE,'
                        'domain="sip:a sip:b"')
    assert c["realm"] == 'a"b' and c["nonce"] == "xyz" and c["algorithm"] == "SHA-256"
    assert c["stale"] is True and c["qop"] == [] and c["opaque"] is None
    assert c["domain"] == "sip:a sip:b"
    for bad in ('Basic realm="x"', 'Digest nonce="n"', "", 'Digest realm="x, nonce=1'):
        with raises(SipError):
            parse_challenge(bad)


def test_hmac_sha256_rfc4231_vectors():
    def hx(b):
        return "".join("%02x" % x for x in b)

    assert hx(hmac_sha256(b"\x0b" * 20, b"Hi There")) == (
        "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
    assert hx(hmac_sha256(b"Jefe", b"what do ya want for nothing?")) == (
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    text = b"Test Using Larger Than Block-Size Key - Hash Key First"
    assert hx(hmac_sha256(b"\xaa" * 131, text)) == (
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54")


def test_server_round_trip_sha256_and_md5():
    server = DigestServer("sipmote", secret=b"k" * 32)
    values = server.challenge(1000)
    assert len(values) == 2
    assert "algorithm=SHA-256" in values[0] and "algorithm=MD5" in values[1]
    for nc, value in ((1, values[0]), (2, values[1])):  # one nonce: counts go on
        c = parse_challenge(value)
        assert c["qop"] == ["auth"] and c["realm"] == "sipmote" and not c["stale"]
        auth = authorization(c, "REGISTER", "sip:sipmote.local", "alice", "s3cret", nc)
        assert server.verify("REGISTER", auth, lookup, 2000) == (True, "alice", False, "ok")
        wrong = authorization(c, "REGISTER", "sip:sipmote.local", "alice", "nope")
        assert server.verify("REGISTER", wrong, lookup, 2000)[:3] == (False, "alice", False)
        other = authorization(c, "INVITE", "sip:sipmote.local", "alice", "s3cret")
        assert server.verify("REGISTER", other, lookup, 2000)[3] == "wrong credentials"


def test_server_accepts_stored_ha1():
    server = DigestServer("r", secret=b"s")
    c = parse_challenge(server.challenge(0)[0])
    auth = authorization(c, "INVITE", "sip:r", "bob", "pw")
    stored = {"SHA-256": ha1("SHA-256", "bob", "r", "pw")}
    assert server.verify("INVITE", auth, lambda u: stored, 1)[0]
    assert server.verify("INVITE", auth, lambda u: None, 1)[3] == "unknown user"
    md5 = authorization(parse_challenge(server.challenge(0)[1]), "INVITE", "sip:r", "bob", "pw")
    assert server.verify("INVITE", md5, lambda u: stored, 1)[3] == "no credentials for MD5"


def test_nonce_expires_and_stale_only_for_right_password():
    server = DigestServer("r", secret=b"s", nonce_ttl_ms=30000)
    c = parse_challenge(server.challenge(10000)[0])
    auth = authorization(c, "REGISTER", "sip:r", "alice", "s3cret")
    ok, user, stale, reason = server.verify("REGISTER", auth, lookup, 40001)
    assert (ok, user, stale, reason) == (False, "alice", True, "nonce expired")
    bad = authorization(c, "REGISTER", "sip:r", "alice", "guess")
    assert server.verify("REGISTER", bad, lookup, 40001)[2] is False
    again = server.challenge(40001, stale=True)
    assert parse_challenge(again[0])["stale"] is True
    # the client retries with the same credentials and the new nonce, without asking
    client = DigestClient("alice", "s3cret")
    client.authorize(c, "REGISTER", "sip:r")
    assert client.retry_allowed(again[0])
    assert server.verify("REGISTER", client.authorize(again[0], "REGISTER", "sip:r"), lookup,
                         40002)[0]


def test_nonce_count_replay_rejected_and_reordering_tolerated():
    server = DigestServer("r", secret=b"s")
    c = parse_challenge(server.challenge(0)[0])
    a1 = authorization(c, "REGISTER", "sip:r", "alice", "s3cret", nc=1)
    assert server.verify("REGISTER", a1, lookup, 1)[0]
    assert server.verify("REGISTER", a1, lookup, 2)[3] == "nonce count replayed"
    a3 = authorization(c, "REGISTER", "sip:r", "alice", "s3cret", nc=3)
    a2 = authorization(c, "REGISTER", "sip:r", "alice", "s3cret", nc=2)
    assert server.verify("REGISTER", a3, lookup, 3)[0]
    assert server.verify("REGISTER", a2, lookup, 4)[0]  # overtaken on UDP: still once
    assert not server.verify("REGISTER", a2, lookup, 5)[0]
    far = authorization(c, "REGISTER", "sip:r", "alice", "s3cret", nc=100)
    assert server.verify("REGISTER", far, lookup, 6)[0]
    assert server.verify("REGISTER", a2, lookup, 7)[3] == "nonce count replayed"  # too old
    zero = authorization(c, "REGISTER", "sip:r", "alice", "s3cret", nc=0)
    assert server.verify("REGISTER", zero, lookup, 8)[3] == "bad nonce count"


def test_nonce_table_is_bounded_and_forgotten_nonces_go_stale():
    server = DigestServer("r", secret=b"s", max_nonces=4)
    issued = [parse_challenge(server.challenge(t)[0]) for t in range(10)]
    for t, c in enumerate(issued[:4]):
        assert server.verify("OPTIONS", authorization(c, "OPTIONS", "sip:r", "alice", "s3cret"),
                             lookup, 20 + t)[0]
    assert len(server._counts.table) == 4
    for c in issued[4:]:
        assert server.verify("OPTIONS", authorization(c, "OPTIONS", "sip:r", "alice", "s3cret"),
                             lookup, 30)[0]
    assert len(server._counts.table) == 4
    # issued[0] was evicted: reusing it (even with a higher nc) is refused as stale
    again = authorization(issued[0], "OPTIONS", "sip:r", "alice", "s3cret", nc=2)
    assert server.verify("OPTIONS", again, lookup, 40)[1:] == (
        "alice", True, "nonce no longer tracked")


def test_forged_or_foreign_nonces_and_other_rejections():
    server = DigestServer("r", secret=b"s")
    other = DigestServer("r", secret=b"different")
    c = parse_challenge(other.challenge(0)[0])
    auth = authorization(c, "INVITE", "sip:r", "alice", "s3cret")
    assert server.verify("INVITE", auth, lookup, 1)[3] == "nonce not issued here"
    mine = server.challenge(0)[0]
    forged = mine.replace('nonce="0.', 'nonce="1.')
    auth = authorization(parse_challenge(forged), "INVITE", "sip:r", "alice", "s3cret")
    assert server.verify("INVITE", auth, lookup, 1)[3] == "nonce not issued here"
    c = parse_challenge(mine)
    auth = authorization(dict(c, realm="elsewhere"), "INVITE", "sip:r", "alice", "s3cret")
    assert server.verify("INVITE", auth, lookup, 1)[3] == "wrong realm"
    legacy = authorization(dict(c, qop=[]), "INVITE", "sip:r", "alice", "s3cret")
    assert server.verify("INVITE", legacy, lookup, 1)[3] == "qop required"  # SHA-256
    assert server.verify("INVITE", "NoOneKnowsThisScheme opaque-data=here", lookup, 1)[3] == (
        "unsupported authorization scheme NoOneKnowsThisScheme")
    assert server.verify("INVITE", 'Digest username="alice"', lookup, 1)[3] == (
        "credentials without realm")
    assert server.verify("INVITE", "Digest =", lookup, 1)[0] is False
    md5only = DigestServer("r", secret=b"s", algorithms=("MD5",))
    assert md5only.verify("INVITE", authorization(c, "INVITE", "sip:r", "alice", "s3cret"),
                          lookup, 1)[3] == "algorithm not offered"


def test_legacy_no_qop_md5_accepted_when_allowed():
    server = DigestServer("r", secret=b"s", algorithms=("MD5",))
    c = parse_challenge(server.challenge(0)[0])
    legacy = authorization(dict(c, qop=[]), "REGISTER", "sip:r", "alice", "s3cret")
    assert "qop" not in parse_auth(legacy)[1]
    assert server.verify("REGISTER", legacy, lookup, 1)[0]
    strict = DigestServer("r", secret=b"s", algorithms=("MD5",), allow_no_qop=False)
    assert strict.verify("REGISTER", legacy, lookup, 1)[3] == "qop required"


def test_digest_uri_check_accepts_what_sipp_hashes():
    server = DigestServer("r", secret=b"s")
    c = parse_challenge(server.challenge(0)[0])
    accept = uri_acceptor("sip:relay@127.0.0.1:5070", ("127.0.0.1",), 5070)
    sipp = authorization(c, "INVITE", "sip:127.0.0.1:5070", "alice", "s3cret", nc=1)
    assert server.verify("INVITE", sipp, lookup, 1, accept)[0]
    exact = authorization(c, "INVITE", "sip:relay@127.0.0.1:5070", "alice", "s3cret", nc=2)
    assert server.verify("INVITE", exact, lookup, 1, accept)[0]
    elsewhere = authorization(c, "INVITE", "sip:10.0.0.9:5070", "alice", "s3cret", nc=3)
    assert server.verify("INVITE", elsewhere, lookup, 1, accept)[3] == (
        "digest uri does not name this server")
    port = authorization(c, "INVITE", "sip:127.0.0.1:5099", "alice", "s3cret", nc=4)
    assert not server.verify("INVITE", port, lookup, 1, accept)[0]
    named = authorization(c, "INVITE", "sip:other@h", "alice", "s3cret", nc=5)
    assert server.verify("INVITE", named, lookup, 1, "sip:other@h")[0]  # a str: must equal
    assert server.verify("INVITE", exact, lookup, 1, "sip:other@h")[3] == (
        "digest uri does not name this server")
    assert not accept("garbage") and accept("sip:127.0.0.1")


def test_client_retry_policy():
    client = DigestClient("alice", "s3cret")
    server = DigestServer("r", secret=b"s")
    first = server.challenge(0)[0]
    assert client.retry_allowed(first)
    a = client.authorize(first, "REGISTER", "sip:r")
    b = client.authorize(first, "REGISTER", "sip:r", answering=False)
    assert parse_auth(a)[1]["nc"] == "00000001" and parse_auth(b)[1]["nc"] == "00000002"
    assert not client.retry_allowed(server.challenge(1)[0])  # rejected answer: wrong password
    assert client.retry_allowed(server.challenge(1, stale=True)[0])
    client.succeeded()
    assert client.retry_allowed(server.challenge(2)[0])


def test_regaut01_unknown_scheme_is_refused_by_the_registrar():
    with open(_rfc4475("regaut01.dat"), "rb") as f:
        m = parse(f.read())
    server = DigestServer("example.com", secret=b"s")
    ok, user, stale, reason = server.verify(m.method, m.get("Authorization"), lookup, 0)
    assert not ok and user is None and not stale and "unsupported authorization scheme" in reason


def _rfc4475(name):
    from checks import is_micropython

    if is_micropython():
        return "../data/rfc4475/" + name
    import os

    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "rfc4475",
                        name)
