# Cross-checks of voip.sip.digest against independent implementations in CPython's standard
# library: urllib's digest client (MD5, qop=auth and RFC 2069 no-qop) and the hmac module.
# CPython only: MicroPython has neither.
import hashlib
import hmac
import os
import urllib.request

from voip.sip.digest import DigestServer, hmac_sha256, parse_auth, parse_challenge


class _FixedPasswords(urllib.request.HTTPPasswordMgr):
    def find_user_password(self, realm, authuri):
        return ("alice", "s3cret")


def _urllib_authorization(challenge_value, url="http://relay.invalid/register"):
    """What urllib's digest client answers to our challenge (no network: only the header)."""
    handler = urllib.request.HTTPDigestAuthHandler(_FixedPasswords())
    scheme, params = parse_auth(challenge_value)
    chal = {k: v for k, v in params.items() if k != "algorithm"}
    chal["algorithm"] = params.get("algorithm", "MD5")
    req = urllib.request.Request(url)
    return "Digest " + handler.get_authorization(req, chal)


def test_server_accepts_urllib_md5_with_qop():
    server = DigestServer("sipmote", secret=b"x", algorithms=("MD5",))
    value = server.challenge(0)[0]
    auth = _urllib_authorization(value)
    assert "qop=auth" in auth and "nc=00000001" in auth
    assert server.verify("GET", auth, {"alice": "s3cret"}.get, 5) == (True, "alice", False, "ok")
    assert server.verify("GET", auth, {"alice": "other"}.get, 5)[3] == "wrong credentials"
    assert server.verify("POST", auth, {"alice": "s3cret"}.get, 5)[3] == "wrong credentials"


def test_server_accepts_urllib_md5_without_qop():
    server = DigestServer("sipmote", secret=b"x", algorithms=("MD5",))
    value = server.challenge(0)[0].replace(', qop="auth"', "")
    assert "qop" not in parse_challenge(value) or parse_challenge(value)["qop"] == []
    auth = _urllib_authorization(value)
    assert "qop" not in auth
    assert server.verify("GET", auth, {"alice": "s3cret"}.get, 5)[0]


def test_hmac_matches_stdlib_for_many_keys_and_messages():
    for n in range(200):
        key = os.urandom(n % 150)
        msg = os.urandom((n * 7) % 300)
        assert hmac_sha256(key, msg) == hmac.new(key, msg, hashlib.sha256).digest()
