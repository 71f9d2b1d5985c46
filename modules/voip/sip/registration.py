# voip.sip.registration: a REGISTER client (RFC 3261 section 10) with digest, refresh and backoff.
# MIT licence.
"""RegistrationClient keeps one contact bound at a registrar, sans-I/O.

    reg = RegistrationClient(layer, user="alice", domain="pbx.lan", password="secret",
                             registrar=("192.168.1.2", 5060), contact="sip:alice@192.168.1.9:5060")
    reg.register(now_ms)      # REGISTER goes out through the TransactionLayer `layer`
    reg.unregister(now_ms)    # Expires: 0 for our contact
    reg.tick(now_ms)          # refresh / retry timer (the layer has its own tick)
    reg.next_deadline()       # -> ms or None (refresh or retry); the layer's deadline is apart
    reg.events()              # -> [RegistrationEvent(kind, status, reason, expires, retry_in)]

The owner of the layer dispatches transaction events to it: every ClientTransaction this
client starts has `tx.context == reg.on_transaction_event`, a callable taking the layer's
"response" and "timeout" events (ev.now_ms is their time). voip.sip.ua calls it for the device;
the relay's endpoint does the same (`tx.context(ev)`) to register with a PBX.

Constructor options: auth_user (default user), expires (asked, s), user_agent, route (a Route
value for an outbound proxy), retry_min_ms / retry_max_ms (bounded exponential backoff after a
failure, with jitter), refresh_margin_ms (refresh at the later of half the granted time and
granted - margin; 40 s covers a refresh that needs timer F and a 401), max_expires (a 423
Min-Expires above it is a failure).

Events (.kind): "registered" (.expires granted in s, .status 200, after every success),
"registration_failed" (.status: 401/403/408/5xx..., .reason, .retry_in ms until the next
attempt), "unregistered" (after the Expires: 0 REGISTER got its 2xx, or timed out).

Digest: a 401/407 is answered with credentials once per attempt; a second challenge that is
not stale=true means wrong credentials (a failure with backoff). stale=true retries with the
new nonce without counting as a credential failure. Refreshes reuse the last challenge with the
next nonce count, so a healthy refresh is one round trip.
"""

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


import os

from voip.sip.message import NameAddr, Request, SipError, Uri, new_call_id, new_tag

IDLE = "idle"
REGISTERING = "registering"
REGISTERED = "registered"
UNREGISTERING = "unregistering"
FAILED = "failed"

_MAX_STALE = const(3)  # stale=true retries in a row before calling it a failure
_MAX_423 = const(2)


class RegistrationEvent:
    def __init__(self, kind, status=None, reason=None, expires=None, retry_in=None):
        self.kind = kind
        self.status = status
        self.reason = reason
        self.expires = expires
        self.retry_in = retry_in

    def __repr__(self):
        return "<RegistrationEvent %s %s>" % (self.kind, self.status)


def pick_challenge(resp):
    """(credentials header name, parsed challenge) to answer a 401/407 with, or None.

    Of several Digest challenges, SHA-256 is preferred over MD5 (RFC 8760)."""
    # Digest auth is imported at the first challenge, not with this module: a phone that is
    # never challenged (one calling its relay directly) keeps ~9 KB of heap (64-bit port).
    from voip.sip.digest import parse_challenge

    if resp.status == 401:
        name, header = "Authorization", "WWW-Authenticate"
    else:
        name, header = "Proxy-Authorization", "Proxy-Authenticate"
    challenge = None
    for value in resp.get_all(header):
        try:
            c = parse_challenge(value)
        except (ValueError, KeyError):
            continue
        alg = (c.get("algorithm") or "MD5").upper()
        if alg in ("MD5", "SHA-256", "MD5-SESS", "SHA-256-SESS"):
            if challenge is None or alg.startswith("SHA-256"):
                challenge = c
    return None if challenge is None else (name, challenge)


def is_stale(challenge):
    v = challenge.get("stale")
    return v is True or (isinstance(v, str) and v.lower() == "true")


def _jitter(delay):
    # Half fixed, half random: devices that lost the registrar together do not return together.
    r = os.urandom(2)
    return delay // 2 + (delay // 2) * (r[0] * 256 + r[1]) // 65535


class RegistrationClient:
    def __init__(
        self,
        layer,
        user,
        domain,
        password,
        registrar,
        contact,
        auth_user=None,
        expires=600,
        user_agent=None,
        route=None,
        retry_min_ms=5000,
        retry_max_ms=300000,
        refresh_margin_ms=40000,
        max_expires=86400,
        jitter=True,
    ):
        self.layer = layer
        self.user = user
        self.domain = domain
        self.password = password
        self.auth_user = auth_user or user
        self.registrar = registrar  # (host, port) the REGISTER is sent to
        self.contact = contact  # our contact URI (str)
        self.expires = expires
        self.user_agent = user_agent
        self.route = route
        self.retry_min_ms = retry_min_ms
        self.retry_max_ms = retry_max_ms
        self.refresh_margin_ms = refresh_margin_ms
        self.max_expires = max_expires
        self.jitter = jitter
        self.aor = "sip:%s@%s" % (user, domain)
        self.request_uri = "sip:" + domain
        self.call_id = new_call_id(domain)
        self.from_tag = new_tag()
        self.cseq = 0
        self.state = IDLE
        self.granted = 0  # seconds the registrar granted last time
        self.expires_at = None  # ms when the binding lapses
        self.failures = 0  # failed attempts in a row (the backoff exponent)
        self._bound = False  # the last REGISTER succeeded (stays true while refreshing)
        self._timer_at = None  # refresh or retry
        self._tx = None
        self._challenge = None  # (header name, parsed challenge) reused for refreshes
        self._nc = 0
        self._fresh_auth = False  # the request in flight answers a challenge of this attempt
        self._stale_count = 0
        self._count_423 = 0
        self._events = []

    # -- the sans-I/O surface --------------------------------------------------------------

    def events(self):
        ev, self._events = self._events, []
        return ev

    def next_deadline(self):
        return self._timer_at

    @property
    def registered(self):
        """True from a successful REGISTER until a failure or un-REGISTER."""
        return self._bound

    def register(self, now_ms):
        """Start (or restart now) registering; refreshes follow by themselves."""
        self._start(REGISTERING, now_ms)

    def unregister(self, now_ms):
        """Remove our binding (Expires: 0); no refresh afterwards."""
        if self.state == IDLE:
            return
        self._start(UNREGISTERING, now_ms)

    def tick(self, now_ms):
        if self._timer_at is None or now_ms < self._timer_at:
            return
        self._timer_at = None
        if self.state in (REGISTERED, FAILED, REGISTERING):
            self._start(REGISTERING, now_ms)

    # -- requests --------------------------------------------------------------------------

    def _start(self, state, now_ms):
        self.state = state
        self._timer_at = None
        self._fresh_auth = False
        self._stale_count = 0
        self._count_423 = 0
        self._send(now_ms)

    def _send(self, now_ms):
        self.cseq += 1
        req = Request("REGISTER", self.request_uri)
        if self.route:
            req.add("Route", self.route)
        req.add("Max-Forwards", "70")
        req.add("From", "<%s>;tag=%s" % (self.aor, self.from_tag))
        req.add("To", "<%s>" % self.aor)
        req.add("Call-ID", self.call_id)
        req.add("CSeq", "%d REGISTER" % self.cseq)
        expires = 0 if self.state == UNREGISTERING else self.expires
        req.add("Contact", "<%s>;expires=%d" % (self.contact, expires))
        req.add("Expires", str(expires))
        if self.user_agent:
            req.add("User-Agent", self.user_agent)
        if self._challenge is not None:
            name, challenge = self._challenge
            self._nc += 1
            try:
                req.add(name, self._credentials(challenge))
            except (SipError, ValueError, KeyError):
                self._challenge = None  # e.g. only qop=auth-int offered: go without
        if self._tx is not None:
            self._tx.context = None  # a late answer to an abandoned attempt is ignored
        try:
            tx = self.layer.send_request(req, self.registrar, now_ms)
        except MemoryError:
            raise
        except Exception as e:  # noqa: BLE001 - e.g. the transaction table is full
            self._failed(503, "cannot send: %s" % e, now_ms)
            return
        tx.context = self.on_transaction_event
        self._tx = tx

    def _credentials(self, challenge):
        from voip.sip.digest import authorization  # loaded by pick_challenge() already

        return authorization(
            challenge, "REGISTER", self.request_uri, self.auth_user, self.password, nc=self._nc
        )

    # -- responses -------------------------------------------------------------------------

    def on_transaction_event(self, ev, now_ms=None):
        """The `.context` callable of our transactions: their "response"/"timeout" events."""
        if now_ms is None:
            now_ms = ev.now_ms
        if ev.transaction is not self._tx:
            return
        if ev.kind == "timeout":
            self._tx = None
            self._failed(408, "registrar did not answer", now_ms)
        elif ev.kind == "response" and ev.response.status >= 200:
            self._tx = None
            try:
                self._final(ev.response, now_ms)
            except (SipError, ValueError, KeyError, TypeError, IndexError) as e:
                self._failed(ev.response.status, "bad response: %s" % e, now_ms)

    def _final(self, resp, now_ms):
        status = resp.status
        if 200 <= status < 300:
            self._success(resp, now_ms)
        elif status == 401 or status == 407:
            self._challenged(resp, now_ms)
        elif status == 423 and self.state == REGISTERING:
            self._too_brief(resp, now_ms)
        else:
            retry_after = None
            value = resp.get("Retry-After")
            if value:
                try:
                    retry_after = int(value.split(";")[0].split("(")[0].strip()) * 1000
                except ValueError:
                    retry_after = None
            self._failed(status, resp.reason, now_ms, retry_after)

    def _success(self, resp, now_ms):
        self.failures = 0
        if self.state == UNREGISTERING:
            self.state = IDLE
            self._bound = False
            self.expires_at = None
            self._events.append(RegistrationEvent("unregistered", resp.status, resp.reason))
            return
        granted = self._granted(resp)
        if granted <= 0:
            # The registrar kept no binding for our contact: treat like a failure.
            self._failed(resp.status, "registrar returned no binding", now_ms)
            return
        self.state = REGISTERED
        self._bound = True
        self.granted = granted
        life = granted * 1000
        self.expires_at = now_ms + life
        # The later of half the lifetime and lifetime - margin: the margin leaves room for a
        # refresh that needs its full 32 s of retransmissions (timer F) and a 401 round.
        refresh = life - self.refresh_margin_ms
        if refresh < life // 2:
            refresh = life // 2
        self._timer_at = now_ms + refresh
        self._events.append(RegistrationEvent("registered", resp.status, resp.reason, granted))

    def _granted(self, resp):
        # RFC 3261 10.2.4: the expires of our own Contact in the 2xx, else the Expires header.
        try:
            mine = Uri.parse(self.contact)
        except SipError:
            mine = None
        for value in resp.get_all("Contact"):
            try:
                addr = NameAddr.parse(value)
            except SipError:
                continue
            if mine is not None and addr.uri == mine:
                exp = addr.params.get("expires")
                if exp is not None:
                    return int(exp)
        value = resp.get("Expires")
        if value is not None:
            return int(value)
        return self.expires

    def _challenged(self, resp, now_ms):
        picked = pick_challenge(resp)
        if picked is None:
            self._failed(resp.status, "no usable digest challenge", now_ms)
            return
        name, challenge = picked
        if is_stale(challenge):
            self._stale_count += 1
            if self._stale_count > _MAX_STALE:
                self._failed(resp.status, "nonce stale again and again", now_ms)
                return
        elif self._fresh_auth:
            # We answered a challenge of this very attempt and got another: bad credentials.
            self._challenge = None
            self._failed(resp.status, "credentials rejected", now_ms)
            return
        self._fresh_auth = True
        self._challenge = (name, challenge)
        self._nc = 0
        self._send(now_ms)

    def _too_brief(self, resp, now_ms):
        self._count_423 += 1
        try:
            minimum = int(resp.get("Min-Expires"))
        except (TypeError, ValueError):
            minimum = None
        if minimum is None or minimum > self.max_expires or self._count_423 > _MAX_423:
            self._failed(423, "Min-Expires not acceptable", now_ms)
            return
        self.expires = max(minimum, self.expires)
        self._send(now_ms)

    def _failed(self, status, reason, now_ms, retry_after=None):
        self._fresh_auth = False
        self._bound = False
        if self.state == UNREGISTERING:
            # Nothing more to do: the binding expires at the registrar by itself.
            self.state = IDLE
            self.expires_at = None
            self._events.append(RegistrationEvent("unregistered", status, reason))
            return
        self.state = FAILED
        self.failures += 1
        delay = self.retry_min_ms
        for _ in range(self.failures - 1):
            delay *= 2
            if delay >= self.retry_max_ms:
                break
        if delay > self.retry_max_ms:
            delay = self.retry_max_ms
        if self.jitter:
            delay = _jitter(delay)
        if retry_after is not None:
            delay = min(max(retry_after, delay), self.retry_max_ms)
        self._timer_at = now_ms + delay
        self._events.append(RegistrationEvent("registration_failed", status, reason, None, delay))
