# voip.sip.ua: the device's SIP user agent: registration, calls, OPTIONS, admission, robustness.
# MIT licence.
"""UserAgent: a small, complete SIP UA over UDP, sans-I/O (RFC 3261, 3581, 6026).

    ua = UserAgent(config, t1=500, t2=4000, t4=5000, answer_offer=None, max_transactions=32)
    ua.receive(data, (host, port), now_ms)   # a datagram; only MemoryError raises
    ua.tick(now_ms)                          # timers (retransmissions, refresh, ring timeout)
    ua.events()        -> [UaEvent, ...]      # drained
    ua.outgoing()      -> [(bytes, (host, port)), ...]   # drained; the shell sends them
    ua.next_deadline() -> int ms or None

config is a dict:
    user (required), password, auth_user (default user), display_name,
    local: (host, port) our address: Contact, Via sent-by (required)
    domain: our AOR's host (default the registrar's host, else local host)
    registrar: (host, port) or None (no registration)
    outbound_proxy: (host, port) or None: every request goes there (initial ones with a
        Route <sip:host:port;lr>); without it an INVITE goes to the target URI's host:port and
        in-dialog requests follow the dialog's route set / remote target
    allowed_hosts: source addresses whose requests are accepted besides the registrar's and
        the outbound proxy's ("*" accepts anyone: lab use only)
    user_agent: str for User-Agent/Server (default "sipmote"), expires (s, default 600),
    max_calls (default 2), ring_timeout_ms (default 120000: then 480),
    blocked_response: 0 (default: drop requests from other sources silently) or 403
Addresses are compared as given: the shell resolves names and passes IP addresses (or
calls ua.allow(ip) with what a name resolved to). now_ms must be monotonic and must not wrap.

Methods (each takes now_ms; each returns at once and queues what to send):
    register(now_ms) -> bool           unregister(now_ms) -> bool      ua.registered
    ping(now_ms) -> bool               OPTIONS to the outbound proxy or registrar (keepalive)
    call(target_uri, sdp_offer, now_ms) -> call_id   (UaError when max_calls are busy or the
                                       URI is not a SIP URI). sdp_offer b"": no offer; the
                                       200's offer is answered in the ACK by answer_offer
    answer(call_id, sdp, now_ms) -> bool    a ringing call (200 resent until ACK; 64*T1
                                       without ACK -> BYE), or a pending re-INVITE offer
    reject(call_id, status=486, now_ms=None) -> bool    486 or 603 (or any 4xx-6xx)
    hangup(call_id, now_ms) -> bool    CANCEL (after a 1xx), BYE, or 603 on a ringing call
    update_media(call_id, sdp, now_ms) -> bool   re-INVITE (hold: a=sendonly, unhold: sendrecv)
    allow(host), allowed_hosts         accept requests from one more source address / list
    call_state(call_id) -> "calling"/"early"/"ringing"/"answering"/"confirmed"/"ending"/None
answer_offer: optional callable(call_id, offer_sdp_bytes_or_None) -> answer bytes or None
(None: 488); called for incoming re-INVITEs. Without it a "media_offer" event asks the
application, which calls answer(call_id, sdp, now_ms) (or nothing: 488 after 64*T1).

UaEvent attributes: kind, call_id, status, reason, remote_sdp (bytes or None), remote_uri,
source ((host, port) of an incoming call), expires (s), retry_in (ms). Kinds:
    registered, registration_failed, unregistered       (registration; call_id None)
    incoming_call   new INVITE, 180 sent: remote_uri, remote_sdp (None: offer in our 200)
    ringing         our INVITE got a 18x (remote_sdp: early media answer, if any)
    answered        our INVITE got its 2xx (ACK sent), or our 200 got its ACK
    call_failed     our INVITE failed: status (408 timeout, 4xx-6xx), reason
    call_ended      status None and reason "local_hangup" / "remote_bye", or status 487
                    (cancelled), 480 (ring_timeout), 408 (no ACK), the reject status ...
    media_offer     an incoming re-INVITE waits for answer() (no answer_offer callback)
    media_updated   a re-INVITE exchange completed: remote_sdp is the peer's new SDP
    media_update_failed  our re-INVITE was refused (status); the call goes on as before
    keepalive       ping() got a response (status) or timed out (408)

Incoming requests: from unknown sources dropped (or 403); parse errors answered 400/505 when
a response can be routed (error_response); validate_request -> 400/415 (+Accept)/416/420
(+Unsupported)/406; methods we know but do not do (REGISTER, INFO, UPDATE, ...) 405, unknown
501, both with Allow; unknown dialog 481; CSeq going backwards 500; a merged INVITE 482; more
than max_calls 486; OPTIONS 200 with Allow, Accept, Supported. No input raises out of
receive() or tick(): failures are counted in ua.stats["errors"] (the last in ua.last_error) and
the datagram dropped. The one exception is MemoryError, which is not the input's fault: it
propagates (counted in ua.stats["out_of_memory"] first), so that the shell can say "out of
memory", collect and carry on; the peer's retransmission then brings the datagram back. Swallowed,
it would look like a lost packet for ever on a tight heap.
"""

from voip.sip.call import ENDING, Call
from voip.sip.dialog import request_dialog_id, uri_address
from voip.sip.message import (
    MAX_MESSAGE_SIZE,
    Request,
    SipError,
    Uri,
    new_call_id,
    new_tag,
    parse,
    response_for,
    unsupported_options,
    validate_request,
    validate_response,
)
from voip.sip.registration import RegistrationClient
from voip.sip.transaction import TransactionLayer
from voip.sip.transport import error_response, response_address
from voip.sip.uri import format_host

ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS"
_ALLOWED = ("INVITE", "ACK", "CANCEL", "BYE", "OPTIONS")
# Methods other RFCs define: 405 (we know them, we do not do them); anything else is 501.
_KNOWN = ("REGISTER", "INFO", "UPDATE", "PRACK", "SUBSCRIBE", "NOTIFY", "REFER", "MESSAGE",
          "PUBLISH")


class UaError(ValueError):
    """A call() the UA cannot make (too many calls, a target that is not a SIP URI)."""


class UaEvent:
    def __init__(self, kind, call_id=None, status=None, reason=None, remote_sdp=None,
                 remote_uri=None, source=None, expires=None, retry_in=None):
        self.kind = kind
        self.call_id = call_id
        self.status = status
        self.reason = reason
        self.remote_sdp = remote_sdp
        self.remote_uri = remote_uri
        self.source = source
        self.expires = expires
        self.retry_in = retry_in

    def __repr__(self):
        return "<UaEvent %s %s %s>" % (self.kind, self.call_id, self.status)


def _addr(value):
    if not value:
        return None
    return (value[0], int(value[1]))


class UserAgent:
    def __init__(self, config, t1=500, t2=4000, t4=5000, answer_offer=None,
                 max_transactions=32):
        self.user = config["user"]
        self.password = config.get("password") or ""
        self.auth_user = config.get("auth_user") or self.user
        self.display_name = config.get("display_name") or None
        self.local = _addr(config["local"])
        self.registrar = _addr(config.get("registrar"))
        self.outbound_proxy = _addr(config.get("outbound_proxy"))
        self.domain = config.get("domain") or (self.registrar or self.local)[0]
        self.user_agent = config.get("user_agent") or "sipmote"
        self.max_calls = config.get("max_calls") or 2
        self.ring_timeout_ms = config.get("ring_timeout_ms") or 120000
        self.blocked_response = config.get("blocked_response") or 0
        self.answer_offer = answer_offer
        self.contact = "sip:%s@%s" % (self.user, format_host(self.local[0], self.local[1]))
        self.layer = TransactionLayer(t1, t2, t4, max_transactions, sent_by=self.local)
        self._allowed = {}
        for host in config.get("allowed_hosts") or ():
            self._allowed[host] = True
        for peer in (self.registrar, self.outbound_proxy):
            if peer is not None:
                self._allowed[peer[0]] = True
        self.reg = None
        if self.registrar is not None:
            route = None
            if self.outbound_proxy is not None:
                route = "<sip:%s;lr>" % format_host(*self.outbound_proxy)
            self.reg = RegistrationClient(
                self.layer, self.user, self.domain, self.password,
                self.outbound_proxy or self.registrar, self.contact, auth_user=self.auth_user,
                expires=config.get("expires") or 600, user_agent=self.user_agent, route=route)
        self._calls = {}
        self._events = []
        self._now = 0
        self.last_error = None
        self.stats = {"received": 0, "malformed": 0, "blocked": 0, "dropped": 0, "errors": 0,
                      "send_failures": 0, "out_of_memory": 0}

    # -- the sans-I/O surface --------------------------------------------------------------

    def events(self):
        ev, self._events = self._events, []
        return ev

    def outgoing(self):
        return self.layer.outgoing()

    def next_deadline(self):
        best = self.layer.next_deadline()
        others = [c.deadline() for c in self._calls.values()]
        if self.reg is not None:
            others.append(self.reg.next_deadline())
        for d in others:
            if d is not None and (best is None or d < best):
                best = d
        return best

    def receive(self, data, addr, now_ms):
        self._now = now_ms
        self.stats["received"] += 1
        try:
            self._receive(data, addr, now_ms)
        except MemoryError:
            self.stats["out_of_memory"] += 1
            raise  # not the datagram's fault: the shell collects and carries on
        except Exception as e:  # noqa: BLE001 - no datagram may break the phone
            self._error(e)
        self._pump()

    def tick(self, now_ms):
        self._now = now_ms
        try:
            self.layer.tick(now_ms)
            if self.reg is not None:
                self.reg.tick(now_ms)
            for call in list(self._calls.values()):
                d = call.deadline()
                if d is not None and d <= now_ms:
                    call.tick(now_ms)
        except MemoryError:
            self.stats["out_of_memory"] += 1
            raise
        except Exception as e:  # noqa: BLE001
            self._error(e)
        self._pump()

    # -- application API -------------------------------------------------------------------

    @property
    def registered(self):
        return self.reg is not None and self.reg.registered

    def register(self, now_ms):
        if self.reg is None:
            return False
        self._now = now_ms
        self.reg.register(now_ms)
        self._pump()
        return True

    def unregister(self, now_ms):
        if self.reg is None:
            return False
        self._now = now_ms
        self.reg.unregister(now_ms)
        self._pump()
        return True

    def allow(self, host):
        self._allowed[host] = True

    @property
    def allowed_hosts(self):
        """Source addresses whose requests are accepted (besides those of our calls)."""
        return list(self._allowed)

    def ping(self, now_ms):
        dest = self.outbound_proxy or self.registrar
        if dest is None:
            return False
        uri = "sip:" + format_host(*dest)
        req = Request("OPTIONS", uri)
        req.add("Max-Forwards", "70")
        req.add("From", "%s;tag=%s" % (self.local_party(), new_tag()))
        req.add("To", "<%s>" % uri)
        req.add("Call-ID", new_call_id(self.local[0]))
        req.add("CSeq", "1 OPTIONS")
        req.add("Accept", "application/sdp")
        self.decorate(req)
        try:
            tx = self.layer.send_request(req, dest, now_ms)
        except MemoryError:
            raise
        except Exception:  # noqa: BLE001 - the transaction table is full
            self.stats["send_failures"] += 1
            return False
        tx.context = self._on_ping
        return True

    def _on_ping(self, ev):
        if ev.kind == "timeout":
            self._events.append(UaEvent("keepalive", status=408, reason="no answer"))
        elif ev.response.status >= 200:
            resp = ev.response
            self._events.append(UaEvent("keepalive", status=resp.status, reason=resp.reason))

    def call(self, target_uri, sdp_offer, now_ms):
        try:
            uri = Uri.parse(target_uri)
        except SipError as e:
            raise UaError("bad target: %s" % e) from None
        if uri.scheme not in ("sip", "sips") or not uri.host:
            raise UaError("target must be a sip: URI")
        if not sdp_offer and self.answer_offer is None:
            raise UaError("no SDP offer and no answer_offer callback to answer the 200's")
        if self._active() >= self.max_calls:
            raise UaError("%d calls in progress" % self.max_calls)
        self._now = now_ms
        call = Call(self, new_call_id(self.local[0]), True)
        self._add(call)
        call.start(str(target_uri), sdp_offer, now_ms)
        self._pump()
        return call.call_id

    def answer(self, call_id, sdp, now_ms):
        return self._do(call_id, now_ms, lambda c: c.answer(sdp, now_ms))

    def reject(self, call_id, status=486, now_ms=None):
        now = self._now if now_ms is None else now_ms
        if not 400 <= status < 700:
            status = 486
        return self._do(call_id, now, lambda c: c.reject(status, now))

    def hangup(self, call_id, now_ms):
        return self._do(call_id, now_ms, lambda c: c.hangup(now_ms))

    def update_media(self, call_id, sdp, now_ms):
        return self._do(call_id, now_ms, lambda c: c.update_media(sdp, now_ms))

    def call_state(self, call_id):
        call = self._calls.get(call_id)
        return call.state if call is not None else None

    def _do(self, call_id, now_ms, action):
        call = self._calls.get(call_id)
        if call is None:
            return False
        self._now = now_ms
        done = action(call)
        self._pump()
        return done

    # -- helpers the calls use -------------------------------------------------------------

    def local_party(self):
        aor = "<sip:%s@%s>" % (self.user, self.domain)
        if self.display_name:
            return '"%s" %s' % (self.display_name.replace('"', "'"), aor)
        return aor

    def decorate(self, msg):
        if self.user_agent:
            msg.add("User-Agent" if msg.is_request else "Server", self.user_agent)

    def target_address(self, uri):
        return uri_address(uri)

    def respond(self, tx, status, reason=None, to_tag=None, contact=False, retry_after=False,
                extra=(), body=b""):
        """A response through a server transaction, with what RFC 3261 asks for it.
        Returns the Response (the UA resends a 2xx to an INVITE itself)."""
        req = tx.request
        if to_tag is None and status > 100:
            to_tag = new_tag()  # 8.2.6.2: a tag on every response that is not 100
        resp = response_for(req, status, reason, to_tag)
        if req.method == "INVITE" and 100 < status < 300:
            # 12.1.1: the responses that make a dialog carry the Record-Route of the request,
            # so the caller's ACK and BYE take the proxies' path too.
            for route in req.get_all("Record-Route"):
                resp.add("Record-Route", route)
        if contact:
            resp.add("Contact", "<%s>" % self.contact)
        if status in (405, 501) or (status < 300 and req.method in ("INVITE", "OPTIONS")):
            resp.add("Allow", ALLOW)
        if status == 415 or (req.method == "OPTIONS" and status == 200):
            resp.add("Accept", "application/sdp")
        if req.method == "OPTIONS" and status == 200:
            resp.add("Accept-Encoding", "identity")
            resp.add("Accept-Language", "en")
            resp.add("Supported", "")
        if retry_after:
            resp.add("Retry-After", "1")  # 14.2: a random 0-10 s is allowed
        for name, value in extra:
            resp.add(name, value)
        self.decorate(resp)
        if body:
            resp.add("Content-Type", "application/sdp")
            resp.body = body
        self.layer.respond(tx, resp, self._now)
        return resp

    def _emit(self, kind, call, status=None, reason=None, remote_sdp=None):
        self._events.append(UaEvent(kind, call.call_id, status, reason, remote_sdp,
                                    call.remote_uri, call.source))

    def _active(self):
        n = 0
        for c in self._calls.values():
            if c.state != ENDING:
                n += 1
        return n

    def _add(self, call):
        # Ended calls linger to finish their signalling; keep that bounded too.
        if len(self._calls) >= 2 * self.max_calls + 2:
            for other in list(self._calls.values()):
                if other.state == ENDING:
                    self._forget(other)
                    break
        self._calls[call.call_id] = call

    def _forget(self, call):
        if self._calls.get(call.call_id) is call:
            del self._calls[call.call_id]

    # -- incoming --------------------------------------------------------------------------

    def _receive(self, data, addr, now):
        if len(data) > MAX_MESSAGE_SIZE or not bytes(data).strip(b"\r\n"):
            self.stats["dropped"] += 1  # oversize, or a CRLF keep-alive (RFC 5626)
            return
        try:
            msg = parse(data)
        except SipError as e:
            self.stats["malformed"] += 1
            if self._admitted_source(addr):
                resp = error_response(data, e)
                if resp is not None:
                    self.layer.send(resp, response_address(resp.get("Via"), addr))
            return
        if msg.is_request:
            if not (self._admitted_source(addr) or msg.call_id in self._calls):
                self.stats["blocked"] += 1
                if self.blocked_response and msg.method != "ACK":
                    resp = response_for(msg, self.blocked_response, None, new_tag())
                    self.layer.send(resp, response_address(msg.get("Via"), addr))
                return
        elif validate_response(msg) is not None:
            self.stats["dropped"] += 1  # 8.1.3.3: more than one Via (4475 bcast)
            return
        self.layer.receive(msg, addr, now)

    def _error(self, exc):
        # Counted and kept for the shell to log (ua.last_error); the datagram is dropped.
        self.stats["errors"] += 1
        self.last_error = exc

    def _admitted_source(self, addr):
        return addr[0] in self._allowed or "*" in self._allowed

    def _pump(self):
        for _ in range(64):  # handlers create a few more events at most; stay bounded
            events = self.layer.events()
            if not events:
                break
            for ev in events:
                try:
                    self._dispatch(ev)
                except MemoryError:
                    self.stats["out_of_memory"] += 1
                    raise
                except Exception as e:  # noqa: BLE001 - one bad message must not stop the UA
                    self._error(e)
        if self.reg is not None:
            for e in self.reg.events():
                self._events.append(UaEvent(e.kind, None, e.status, e.reason,
                                            expires=e.expires, retry_in=e.retry_in))

    def _dispatch(self, ev):
        if ev.kind == "request":
            self._on_request(ev)
            return
        tx = ev.transaction
        if tx is not None:
            if tx.context is not None:
                tx.context(ev)
        elif ev.kind == "response":
            call = self._calls.get(ev.response.call_id)
            if call is not None:
                call._on_2xx(ev.response, ev.now_ms)  # a 2xx retransmitted after timer M

    def _on_request(self, ev):
        req, tx, now = ev.request, ev.transaction, ev.now_ms
        method = req.method
        call = self._calls.get(req.call_id)
        if method == "ACK":
            if tx is None and call is not None and call.dialog is not None:
                if request_dialog_id(req) == call.dialog.id:
                    call.on_ack(req, now)
            return
        problem = validate_request(req)
        if problem is not None:
            status, reason = problem
            extra = ()
            if status == 420:
                extra = (("Unsupported", ", ".join(unsupported_options(req))),)
            self.respond(tx, status, reason, extra=extra)
            return
        if method not in _ALLOWED:
            self.respond(tx, 405 if method in _KNOWN else 501)
            return
        if method == "CANCEL":
            if ev.cancel_target is None or call is None:
                self.respond(tx, 481)
                return
            self.respond(tx, 200)
            call.on_cancel(now)
            return
        if req.to_tag is not None:
            if call is None or call.dialog is None or request_dialog_id(req) != call.dialog.id:
                self.respond(tx, 481)
            elif call.dialog.check_request(req):
                self.respond(tx, 500, "CSeq Out Of Order")
            elif method == "BYE":
                call.on_bye(tx, now)
            elif method == "INVITE":
                call.on_reinvite(req, tx, now)
            else:
                self.respond(tx, 200)  # OPTIONS inside the dialog
            return
        if method == "OPTIONS":
            self.respond(tx, 200)
        elif method == "BYE":
            self.respond(tx, 481)
        elif call is not None:
            if call.invite is not None and call.invite.top_via.branch == req.top_via.branch:
                return  # our own INVITE's late retransmission: the call has it already
            self.respond(tx, 482)  # 8.2.2.2: the same INVITE again by another path
        elif self._active() >= self.max_calls:
            self.respond(tx, 486)
        else:
            call = Call(self, req.call_id, False)
            if call.accept_invite(req, tx, now):
                self._add(call)
                self._emit("incoming_call", call, remote_sdp=call.remote_sdp)
