"""Admission of out-of-dialog requests: digest, allowlist, trusted PBX, lockout.

``Guard.check(request, source, now_ms)`` returns one of:

    Admit(user, how)          how: "digest" (user = the device), "allowlist", "pbx"
    Challenge(headers)        answer 401 with these WWW-Authenticate values
    Reject(reason)            answer 403; `reason` is for the log only

Rules, in order:
1. a source locked out after repeated digest failures gets 403 (nothing else is looked at);
2. INVITEs from the PBX the relay registered with, or from an allowlisted address, get in;
3. everything else needs digest credentials of a configured device: none (or for another
   realm) -> 401; good -> admitted; a stale nonce -> 401 stale=true; wrong -> 403.
   A REGISTER must also authenticate as the user it registers (To), whatever its source.
An unknown user and a wrong password look exactly alike from outside (the same 403, and
the unknown user's response is checked against a random secret so it costs the same work),
so the relay's user names cannot be enumerated.
"""

import hashlib
import logging
import os

from voip.sip import digest
from voip.sip.message import SipError

log = logging.getLogger("sipmote.relay.admission")


class Admit:
    def __init__(self, user, how):
        self.user = user
        self.how = how

    def __repr__(self):
        return "Admit(%r, %r)" % (self.user, self.how)


class Challenge:
    def __init__(self, headers):
        self.headers = headers


class Reject:
    def __init__(self, reason):
        self.reason = reason

    def __repr__(self):
        return "Reject(%r)" % self.reason


class Guard:
    def __init__(
        self, realm, devices, allowlist, limiter, our_hosts=(), algorithms=None, local_port=None
    ):
        """`devices`: config Device list; `allowlist`: admission.Allowlist; `limiter`:
        admission.FailureLimiter; `our_hosts`: host names/addresses a digest-uri may name."""
        self.realm = realm
        self.devices = {d.user: d for d in devices}
        self.allowlist = allowlist
        self.limiter = limiter
        self.our_hosts = {h.lower() for h in our_hosts if h}
        self.trusted = set()  # (host, port) of the PBX we registered with
        self.local_port = local_port
        kwargs = {}
        if algorithms:
            kwargs["algorithms"] = tuple(algorithms)
        self.server = digest.DigestServer(realm, **kwargs)
        # for unknown users: a password nobody knows, so verification fails at the same cost
        self._decoy = os.urandom(16).hex()
        self.stats = {"admitted": 0, "challenged": 0, "rejected": 0, "locked_out": 0}

    def add_our_host(self, host):
        if host:
            self.our_hosts.add(host.lower())

    def check(self, request, source, now_ms):
        host = source[0]
        if self.limiter.locked(host, now_ms):
            self.stats["locked_out"] += 1
            return Reject("source %s is locked out after repeated digest failures" % host)
        method = request.method
        if method != "REGISTER":
            if tuple(source) in self.trusted:
                return self._admit(None, "pbx")
            if host in self.allowlist:
                return self._admit(None, "allowlist")
        credentials = _credentials(request, self.realm)
        if credentials is None:
            self.stats["challenged"] += 1
            return Challenge(self.server.challenge(now_ms))
        ok, user, stale, reason = self.server.verify(
            method,
            credentials,
            self._lookup,
            now_ms,
            accept_uri=self._uri_acceptor(request),
        )
        if ok and user in self.devices:
            if method == "REGISTER" and _to_user(request) != user:
                return self._fail(
                    host, now_ms, "%s tried to register %r" % (user, _to_user(request))
                )
            self.limiter.success(host)
            return self._admit(user, "digest")
        if stale:
            self.stats["challenged"] += 1
            return Challenge(self.server.challenge(now_ms, stale=True))
        return self._fail(host, now_ms, "digest failed (%s)" % reason)

    def _admit(self, user, how):
        self.stats["admitted"] += 1
        return Admit(user, how)

    def _fail(self, host, now_ms, reason):
        self.stats["rejected"] += 1
        if self.limiter.failure(host, now_ms):
            log.warning(
                "locking out %s for %d s after %d digest failures",
                host,
                self.limiter.lockout_ms // 1000,
                self.limiter.max_failures,
            )
        return Reject(reason)

    def _lookup(self, user):
        device = self.devices.get(user)
        if device is None:
            return self._decoy  # verified like a real password: same work, same answer
        if device.password is not None:
            return device.password
        return {"MD5": device.ha1}  # an MD5 HA1 cannot check a SHA-256 response

    def _uri_acceptor(self, request):
        """The digest-uri must name this request or us: SIPp hashes sip:<our ip>:<port>.
        The Request-URI's host is one of ours by construction (the request reached us)."""
        hosts = set(self.our_hosts)
        try:
            host = request.request_uri.host
            if host:
                hosts.add(host.lower())
        except SipError:
            pass
        return digest.uri_acceptor(request.uri, sorted(hosts), self.local_port)


def _credentials(request, realm):
    """The Authorization value for our realm, or None (a value for another realm, e.g. one
    a phone kept from its PBX, is as good as none: we challenge)."""
    for value in request.get_all("Authorization"):
        if 'realm="%s"' % realm in value or "realm=%s" % realm in value:
            return value
    return None


def _to_user(request):
    try:
        return request.to_addr.uri.user
    except SipError:
        return None


def ha1_md5(user, realm, password):
    """The HA1 a [[devices]] entry may hold instead of a password."""
    return hashlib.md5(("%s:%s:%s" % (user, realm, password)).encode()).hexdigest()
