# voip.sip.digest: HTTP Digest authentication for SIP (RFC 3261 22, RFC 2617, RFC 7616,
# RFC 8760 SHA-256), client side (answer a 401/407) and server side (challenge, verify).
# MIT licence.
#
# Only hashlib.md5/sha256 and binascii: both exist on the MicroPython unix port and the ESP32.
# There is no hmac module on MicroPython, so HMAC-SHA256 (RFC 2104) is written out in
# voip.sip.nonce; the server's nonces are "timestamp.random.HMAC(secret, ...)", which needs
# no table to check that a nonce is ours and still fresh. Nonce counts are remembered per nonce
# in a bounded table (voip.sip.nonce.NonceCounts) so a replayed request is refused.
import binascii
import hashlib
import os

from .nonce import Hmac, NonceCounts, equal, hmac_sha256  # noqa: F401 - re-exported
from .syntax import SipError, quote, split_list, unquote

_HASHES = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}


def _hex(digest):
    return binascii.hexlify(digest).decode()


def _algorithm(name):
    """(hash constructor, session variant?) for an algorithm name, case-insensitively."""
    upper = (name or "MD5").upper()
    sess = upper.endswith("-SESS")
    base = upper[:-5] if sess else upper
    h = _HASHES.get(base)
    if h is None:
        raise SipError("unsupported digest algorithm " + repr(name))
    return h, sess


def hash_hex(algorithm, text):
    """H(text) in lowercase hex for "MD5" or "SHA-256" (text is str, UTF-8 encoded)."""
    return _hex(_algorithm(algorithm)[0](text.encode()).digest())


def ha1(algorithm, username, realm, password):
    """HA1 = H(username:realm:password): what a server may store instead of the password."""
    return hash_hex(algorithm, username + ":" + realm + ":" + password)


def response_digest(algorithm, ha1_hex, nonce, method, uri, qop=None, nc=None, cnonce=None,
                    body=b""):
    """The request-digest (RFC 7616 3.4.1), from HA1 (already hashed, without -sess applied).

    qop None is the RFC 2069 form H(HA1:nonce:HA2); "auth" and "auth-int" use
    H(HA1:nonce:nc:cnonce:qop:HA2), auth-int hashing the body into HA2.
    """
    h, sess = _algorithm(algorithm)
    if sess:
        ha1_hex = hash_hex(algorithm[:-5], ha1_hex + ":" + nonce + ":" + (cnonce or ""))
    a2 = method + ":" + uri
    if qop == "auth-int":
        a2 += ":" + _hex(h(bytes(body)).digest())
    ha2 = _hex(h(a2.encode()).digest())
    if qop:
        text = ":".join((ha1_hex, nonce, nc, cnonce or "", qop, ha2))
    else:
        text = ha1_hex + ":" + nonce + ":" + ha2
    return _hex(h(text.encode()).digest())


def parse_auth(value):
    """Split a WWW-Authenticate/Authorization value into (scheme, params).

    Names are lowercased, quoted values unquoted. Raises SipError when malformed."""
    value = value.strip()
    sp = 0
    while sp < len(value) and value[sp] not in " \t":
        sp += 1
    scheme = value[:sp]
    if not scheme:
        raise SipError("empty authentication header")
    params = {}
    rest = value[sp:].strip()
    if rest:
        for item in split_list(rest):
            if not item:
                continue
            name, eq, v = item.partition("=")
            name = name.strip().lower()
            if not eq or not name:
                raise SipError("bad authentication parameter " + repr(item[:40]))
            v = v.strip()
            params[name] = unquote(v) if v.startswith('"') else v
    return scheme, params


def parse_challenge(value):
    """Parse a WWW-Authenticate or Proxy-Authenticate value into a dict.

    Keys: realm, nonce, algorithm (default "MD5"), qop (list of options, [] when absent),
    opaque (or None), stale (bool), plus any others as sent. SipError if not Digest or
    without realm/nonce."""
    scheme, params = parse_auth(value)
    if scheme.lower() != "digest":
        raise SipError("unsupported authentication scheme " + repr(scheme))
    if "realm" not in params or "nonce" not in params:
        raise SipError("digest challenge without realm or nonce")
    params["algorithm"] = params.get("algorithm") or "MD5"
    params["qop"] = [q.strip() for q in params.get("qop", "").split(",") if q.strip()]
    params["opaque"] = params.get("opaque")
    params["stale"] = (params.get("stale") or "").lower() == "true"
    return params


def new_cnonce():
    """A client nonce: 64 random bits in hex."""
    return _hex(os.urandom(8))


def authorization(challenge, method, uri, username, password, nc=1, cnonce=None, body=None):
    """The Authorization (or Proxy-Authorization) value answering `challenge`.

    challenge: a dict from parse_challenge (or the header value itself). Uses qop=auth when
    offered (auth-int when only that is offered and `body` is given), the RFC 2069 form when
    no qop is offered; MD5, MD5-sess, SHA-256, SHA-256-sess. nc is this request's count for
    the nonce (1, 2, ... when reusing a nonce); cnonce is generated when None.
    """
    if isinstance(challenge, str):
        challenge = parse_challenge(challenge)
    algorithm = challenge.get("algorithm") or "MD5"
    realm, nonce = challenge["realm"], challenge["nonce"]
    offered = challenge.get("qop") or []
    if isinstance(offered, str):
        offered = [q.strip() for q in offered.split(",")]
    qop = None
    if "auth" in offered:
        qop = "auth"
    elif "auth-int" in offered and body is not None:
        qop = "auth-int"
    elif offered:
        raise SipError("no supported qop in " + repr(offered))
    if qop or _algorithm(algorithm)[1]:
        cnonce = cnonce or new_cnonce()
    nc_text = "%08x" % nc if qop else None
    base_ha1 = ha1(algorithm.upper().replace("-SESS", ""), username, realm, password)
    resp = response_digest(algorithm, base_ha1, nonce, method, uri, qop, nc_text, cnonce,
                           body or b"")
    parts = [
        "Digest username=" + quote(username),
        "realm=" + quote(realm),
        "nonce=" + quote(nonce),
        "uri=" + quote(uri),
        "response=" + quote(resp),
        "algorithm=" + algorithm,
    ]
    if cnonce is not None:
        parts.append("cnonce=" + quote(cnonce))
    if challenge.get("opaque") is not None:
        parts.append("opaque=" + quote(challenge["opaque"]))
    if qop:
        parts.append("qop=" + qop)
        parts.append("nc=" + nc_text)
    return ", ".join(parts)


class DigestClient:
    """A user's credentials and the per-nonce state a client keeps between requests.

    authorize(challenge, method, uri) returns the header value, counting nc up while the
    server keeps the same nonce (so a registration refresh may reuse the last nonce).
    retry_allowed(challenge) says whether answering a 401/407 makes sense: yes when this
    realm has not been answered since the last succeeded(), and always for stale=true
    (RFC 7616 3.3: retry without asking for credentials again); no when the realm rejects
    credentials we just sent in answer to its challenge (they are wrong). Pass
    answering=False for credentials sent unprompted (a refresh reusing a nonce), so the 401
    that may follow is still answered.
    """

    def __init__(self, username, password):
        self.username = username
        self.password = password
        self._nonce = None
        self._nc = 0
        self._answered = {}  # realm -> True; only the few realms one UA talks to

    def authorize(self, challenge, method, uri, body=None, answering=True):
        if isinstance(challenge, str):
            challenge = parse_challenge(challenge)
        if challenge["nonce"] != self._nonce:
            self._nonce = challenge["nonce"]
            self._nc = 0
        self._nc += 1
        if answering:
            self._answered[challenge["realm"]] = True
        return authorization(challenge, method, uri, self.username, self.password,
                             self._nc, None, body)

    def retry_allowed(self, challenge):
        if isinstance(challenge, str):
            challenge = parse_challenge(challenge)
        return challenge["stale"] or challenge["realm"] not in self._answered

    def succeeded(self):
        """Call after a 2xx: later challenges are answered again."""
        self._answered = {}


# -- server side ------------------------------------------------------------------------------


class DigestServer:
    """Challenges requests and verifies their credentials (a registrar, a relay, a UAS).

    DigestServer(realm, secret=None, nonce_ttl_ms=300000, algorithms=("SHA-256", "MD5"),
    max_nonces=128, allow_no_qop=True). `secret` (bytes) keys the nonce HMAC; None picks a
    random one, so nonces die with the object. Times are the caller's monotonic milliseconds
    (a clock that wraps, like ticks_ms, only makes nonces look stale early: clients retry).
    allow_no_qop accepts RFC 2069 MD5 answers without qop; those carry no nonce count, so
    they can be replayed while the nonce lives (nonce_ttl_ms): turn it off where that matters.
    """

    def __init__(self, realm, secret=None, nonce_ttl_ms=300000, algorithms=("SHA-256", "MD5"),
                 max_nonces=128, allow_no_qop=True):
        self.realm = realm
        self.nonce_ttl_ms = nonce_ttl_ms
        self.algorithms = [a.upper() for a in algorithms]
        for a in self.algorithms:
            _algorithm(a)
        self.allow_no_qop = allow_no_qop
        self._hmac = Hmac(secret if secret is not None else os.urandom(32))
        self._counts = NonceCounts(max_nonces)

    def _mac(self, stamp):
        return _hex(self._hmac.digest((stamp + "." + self.realm).encode()))[:32]

    def new_nonce(self, now_ms):
        """A fresh nonce "<ms hex>.<random hex>.<hmac hex>"."""
        stamp = "%x.%s" % (now_ms, _hex(os.urandom(6)))
        return stamp + "." + self._mac(stamp)

    def _nonce_time(self, nonce):
        # The issue time of a nonce we made, or None when it is not one of ours.
        parts = nonce.split(".")
        if len(parts) != 3 or len(parts[0]) > 16:
            return None
        if not equal(self._mac(parts[0] + "." + parts[1]), parts[2]):
            return None
        try:
            return int(parts[0], 16)
        except ValueError:
            return None

    def challenge(self, now_ms, stale=False):
        """WWW-Authenticate (401) or Proxy-Authenticate (407) values, one per algorithm in
        order of preference (RFC 8760 3: SHA-256 first), all with the same fresh nonce."""
        nonce = self.new_nonce(now_ms)
        out = []
        for a in self.algorithms:
            v = 'Digest realm=%s, nonce="%s", algorithm=%s, qop="auth"' % (
                quote(self.realm), nonce, a)
            out.append(v + ", stale=true" if stale else v)
        return out

    def verify(self, method, auth_value, lookup, now_ms, accept_uri=None):
        """Check an Authorization/Proxy-Authorization value for a request.

        lookup(username) returns None (unknown user), the password (str), or a dict
        {"MD5": ha1_hex, "SHA-256": ha1_hex} for this realm. accept_uri decides whether the
        digest's uri names us: None accepts any, a str must equal it, a callable gets the uri
        (SIPp hashes "sip:<ip>:<port>", not the Request-URI; see uri_acceptor).
        Returns (ok, username or None, stale, reason); on stale=True challenge again with
        stale=True so the client retries without new credentials.
        """
        try:
            scheme, p = parse_auth(auth_value)
        except SipError as e:
            return (False, None, False, str(e))
        if scheme.lower() != "digest":
            return (False, None, False, "unsupported authorization scheme " + scheme[:20])
        user = p.get("username")
        for key in ("username", "realm", "nonce", "uri", "response"):
            if not p.get(key):
                return (False, user, False, "credentials without " + key)
        if p["realm"] != self.realm:
            return (False, user, False, "wrong realm")
        algorithm = (p.get("algorithm") or "MD5").upper()
        if algorithm not in self.algorithms:
            return (False, user, False, "algorithm not offered")
        ts = self._nonce_time(p["nonce"])
        if ts is None:
            return (False, user, False, "nonce not issued here")
        uri = p["uri"]
        if accept_uri is not None:
            ok = accept_uri(uri) if callable(accept_uri) else uri == accept_uri
            if not ok:
                return (False, user, False, "digest uri does not name this server")
        qop = p.get("qop")
        nc = None
        if qop:
            if qop != "auth" or not p.get("cnonce"):
                return (False, user, False, "unsupported qop or no cnonce")
            nc_text = p.get("nc", "")
            nc = _parse_nc(nc_text)
            if nc is None:
                return (False, user, False, "bad nonce count")
        elif not self.allow_no_qop or algorithm != "MD5":
            return (False, user, False, "qop required")
        secret = lookup(user)
        if secret is None:
            return (False, user, False, "unknown user")
        if isinstance(secret, dict):
            stored = secret.get(algorithm)
            if stored is None:
                return (False, user, False, "no credentials for " + algorithm)
        else:
            stored = ha1(algorithm, user, self.realm, secret)
        expected = response_digest(algorithm, stored, p["nonce"], method, uri, qop,
                                   p.get("nc") if qop else None, p.get("cnonce"))
        if not equal(expected, p["response"].lower()):
            return (False, user, False, "wrong credentials")
        # Only a correct response earns stale=true (RFC 7616 3.3): the client knew the
        # password and just used an old nonce.
        age = now_ms - ts
        if age < 0 or age > self.nonce_ttl_ms:
            return (False, user, True, "nonce expired")
        if nc is not None:
            seen = self._counts.accept(p["nonce"], ts, nc, now_ms, self.nonce_ttl_ms)
            if seen == "replay":
                return (False, user, False, "nonce count replayed")
            if seen == "forgotten":
                return (False, user, True, "nonce no longer tracked")
        return (True, user, False, "ok")


def _parse_nc(text):
    if len(text) != 8:
        return None
    for c in text:
        if not (("0" <= c <= "9") or ("a" <= c <= "f") or ("A" <= c <= "F")):
            return None
    n = int(text, 16)
    return n if n > 0 else None


def uri_acceptor(request_uri, local_hosts=(), local_port=None):
    """A predicate for DigestServer.verify's accept_uri: True for the Request-URI itself (as
    written or equal by RFC 3261 rules), or for any sip/sips URI whose host is one of
    `local_hosts` and whose port is absent or `local_port` (what SIPp hashes)."""
    from .uri import Uri

    hosts = [h.lower() for h in local_hosts]

    def accept(uri):
        if uri == request_uri:
            return True
        try:
            u = Uri.parse(uri)
        except SipError:
            return False
        try:
            if u == Uri.parse(request_uri):
                return True
        except SipError:
            pass
        if u.scheme not in ("sip", "sips") or (u.host or "").lower() not in hosts:
            return False
        return u.port is None or local_port is None or u.port == local_port

    return accept
