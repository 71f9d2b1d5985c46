# voip.sip.transaction: RFC 3261 section 17 transactions over UDP, sans-I/O.
# MIT licence.
"""Client and server transactions (INVITE and non-INVITE) with their timers.

    layer = TransactionLayer(t1=500, t2=4000, t4=5000, max_transactions=32)
    tx = layer.send_request(request, (host, port), now_ms)   # -> ClientTransaction
    layer.receive(data_or_message, (host, port), now_ms)     # feed a datagram
    layer.respond(server_tx, response, now_ms)               # answer a ServerTransaction
    layer.send(data_or_message, (host, port))                # stateless (2xx ACK, 2xx resend)
    layer.tick(now_ms)                                       # fire due timers
    layer.events()        -> [TransactionEvent, ...]          # drained
    layer.outgoing()      -> [(bytes, (host, port)), ...]     # drained
    layer.next_deadline() -> int ms or None

Every event has .now_ms (the time it happened). ClientTransaction and ServerTransaction
have a free `.context` slot: the TU keeps a callable there taking the event (the device UA, the
relay and RegistrationClient all dispatch "response"/"timeout" events through it).

TransactionEvent.kind is one of:
  "request"   a new request (.request, .source, .transaction = ServerTransaction, or None for an
              ACK that matched no transaction: the ACK of a 2xx). For CANCEL, .cancel_target is
              the INVITE ServerTransaction it cancels (None: answer 481).
  "response"  a response for a ClientTransaction (.response, .transaction, .source); also a
              2xx to an INVITE that matches no transaction any more (.transaction None): the TU
              ACKs it again.
  "timeout"   timer B/F (client, no final response), timer H (server INVITE, no ACK for a
              non-2xx) or a guard timer: .transaction says which.
  "error"     a datagram parse() rejected (.error the SipError, .data the bytes, .source);
              voip.sip.transport.error_response(data, error) builds the 400/505 to send
              back, when one can be.

Timers (RFC 3261 17.1.1.2, 17.1.2.2, 17.2.1, 17.2.2 and RFC 6026 for the 2xx):
  client INVITE:     A = T1 doubling, B = 64*T1, D = 32 s; 2xx -> Accepted for 64*T1 (timer M)
  client non-INVITE: E = T1 doubling up to T2, F = 64*T1, K = T4
  server INVITE:     100 Trying after 200 ms if the TU has not answered; G = T1 doubling up to
                     T2, H = 64*T1, I = T4; 2xx -> Accepted for 64*T1 (timer L): the TU (the user
                     agent) retransmits its 2xx until the ACK, as RFC 6026 says
  server non-INVITE: J = 64*T1
Guards keep everything bounded: an INVITE left in Proceeding ends after `timer_c` ms, a server
transaction its TU never answers after 64*T1 (non-INVITE) or `timer_c` (INVITE).

Responses to requests go where RFC 3261 18.2.2 and RFC 3581 say: the top Via of an incoming
request gets `received=` (source IP differs from sent-by) and `rport=<port>` (when the request
asked with a bare `rport`); responses go to the source address when rport was asked for, else to
the received/sent-by host and the sent-by port. In practice the source IP is always used, so this
layer never reflects traffic to a third party named in a Via.

now_ms must be monotonic and must not wrap (the shell accumulates ticks_diff on the device).
"""

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


from voip.sip.message import Request, SipError, Via, new_branch, parse, response_for
from voip.sip.transport import error_response, mark_received, response_address  # noqa: F401
from voip.sip.uri import format_host

# States. Small ints; names only for repr and tests.
CALLING = const(1)
TRYING = const(2)
PROCEEDING = const(3)
COMPLETED = const(4)
CONFIRMED = const(5)
ACCEPTED = const(6)
TERMINATED = const(7)
STATE_NAMES = {
    1: "calling",
    2: "trying",
    3: "proceeding",
    4: "completed",
    5: "confirmed",
    6: "accepted",
    7: "terminated",
}

MAGIC_COOKIE = "z9hG4bK"
_TRYING_DELAY = const(200)
_TIMER_D = const(32000)
# States where a transaction only absorbs retransmissions: safe to reap when full.
_ABSORBING = (COMPLETED, CONFIRMED, ACCEPTED, TERMINATED)


class TransactionLimitError(Exception):
    """send_request() when max_transactions are all in progress."""


class TransactionEvent:
    def __init__(self, kind, transaction=None, message=None, source=None, now_ms=None):
        self.kind = kind
        self.now_ms = now_ms  # when it happened: handlers need no clock of their own
        self.transaction = transaction
        self.source = source
        self.request = message if message is not None and message.is_request else None
        self.response = message if message is not None and not message.is_request else None
        self.cancel_target = None
        self.error = None
        self.data = None

    def __repr__(self):
        return "<TransactionEvent %s>" % self.kind


class _Transaction:
    # Timers: one retransmission timer (`retx_at`, doubling `retx_interval` up to `retx_cap`)
    # and one end timer (`end_at`) whose meaning depends on the state (B, D, F, H, I, J, K, L, M
    # or a guard). Deadline = the earlier of the two.
    is_client = False

    def __init__(self, key, method, now_ms):
        self.key = key
        self.method = method
        self.state = 0
        self.created = now_ms
        self.retx_at = None
        self.retx_interval = 0
        self.retx_cap = 0
        self.end_at = None
        self.last_response = None
        # Free for the transaction user (the UA keeps what the transaction is for here).
        self.context = None

    @property
    def state_name(self):
        return STATE_NAMES.get(self.state, "?")

    def deadline(self):
        a, b = self.retx_at, self.end_at
        if a is None:
            return b
        if b is None or a < b:
            return a
        return b

    def __repr__(self):
        return "<%s %s %s>" % (type(self).__name__, self.method, self.state_name)


class ClientTransaction(_Transaction):
    is_client = True

    def __init__(self, key, request, addr, data, now_ms):
        _Transaction.__init__(self, key, request.method, now_ms)
        self.request = request
        self.addr = addr
        self.branch = key[0]
        self.data = data
        self.ack_data = None


class ServerTransaction(_Transaction):
    def __init__(self, key, request, source, now_ms):
        _Transaction.__init__(self, key, request.method, now_ms)
        self.request = request
        self.source = source
        self.response_addr = response_address(request.get("Via"), source)
        self.response_data = None


def _server_key(request, via):
    method = request.method
    if method == "ACK":
        method = "INVITE"
    branch = via.params.get("branch") or ""
    if branch.startswith(MAGIC_COOKIE):
        return (branch, via.host.lower(), via.port, method)
    # RFC 2543 fallback (17.2.3): Call-ID, From tag, CSeq number and the whole top Via. The To
    # tag is left out so that the ACK of a non-2xx (which carries our To tag) still matches.
    try:
        cseq = request.cseq[0]
    except (SipError, ValueError, TypeError, AttributeError):
        cseq = -1
    return ("2543", request.get("Call-ID"), request.from_tag, cseq, str(via), method)


def _in_invite_transaction(method, invite, to):
    # CANCEL (RFC 3261 9.1) and the ACK of a non-2xx (17.1.1.3) belong to the INVITE's own
    # transaction: its Request-URI, its top Via (same branch), Route set, From, Call-ID and
    # CSeq number. Only To may differ: the ACK takes the response's (with the UAS's tag).
    req = Request(method, invite.uri)
    req.add("Via", invite.get("Via"))
    for route in invite.get_all("Route"):
        req.add("Route", route)
    req.add("Max-Forwards", "70")
    req.add("From", invite.get("From"))
    req.add("To", to)
    req.add("Call-ID", invite.get("Call-ID"))
    req.add("CSeq", "%d %s" % (invite.cseq[0], method))
    return req


def build_non2xx_ack(invite, response):
    """The ACK a client INVITE transaction sends for a 300-699 (RFC 3261 17.1.1.3)."""
    return _in_invite_transaction("ACK", invite, response.get("To"))


def build_cancel(invite):
    """The CANCEL of our INVITE while it rings (RFC 3261 9.1); send it as a new client
    transaction: its branch matches the INVITE's, its method tells the two apart."""
    return _in_invite_transaction("CANCEL", invite, invite.get("To"))


class TransactionLayer:
    def __init__(
        self,
        t1=500,
        t2=4000,
        t4=5000,
        max_transactions=32,
        timer_c=180000,
        sent_by=None,
    ):
        self.t1 = t1
        self.t2 = t2
        self.t4 = t4
        self.max_transactions = max_transactions
        self.timer_c = timer_c
        # (host, port) for the Via this layer adds to requests that have none.
        self.sent_by = sent_by
        self._client = {}
        self._server = {}
        self._events = []
        self._out = []
        self.stats = {
            "received": 0,
            "parse_errors": 0,
            "dropped": 0,
            "retransmissions": 0,
            "absorbed": 0,
            "overload": 0,
            "errors": 0,
        }

    # -- the sans-I/O surface --------------------------------------------------------------

    def events(self):
        ev, self._events = self._events, []
        return ev

    def outgoing(self):
        out, self._out = self._out, []
        return out

    def next_deadline(self):
        best = None
        for table in (self._client, self._server):
            for tx in table.values():
                d = tx.deadline()
                if d is not None and (best is None or d < best):
                    best = d
        return best

    def __len__(self):
        return len(self._client) + len(self._server)

    def send(self, data, addr):
        """Send a message or bytes outside any transaction (2xx ACK, 2xx retransmission).
        A Request without Via gets ours with a new branch, as in send_request()."""
        if not isinstance(data, (bytes, bytearray)):
            if data.is_request and not data.get_all("Via"):
                self.add_via(data)
            data = data.serialize()
        self._out.append((bytes(data), addr))

    def add_via(self, request):
        """Put our Via (sent_by, rport, a new branch) on top of a request."""
        if self.sent_by is None:
            raise ValueError("request has no Via and the layer has no sent_by")
        host, port = self.sent_by
        request.insert(
            "Via", "SIP/2.0/UDP %s;rport;branch=%s" % (format_host(host, port), new_branch())
        )

    def send_request(self, request, addr, now_ms):
        """Start a client transaction; the first copy is in outgoing() at once."""
        vias = request.get_all("Via")
        if not vias:
            self.add_via(request)
            vias = request.get_all("Via")
        via = Via.parse(vias[0])
        branch = via.params.get("branch")
        if not branch:
            branch = new_branch()
            via.params["branch"] = branch
            request.remove("Via")
            vias[0] = str(via)
            for i in range(len(vias) - 1, -1, -1):
                request.insert("Via", vias[i])
        method = request.method
        key = (branch, method)
        if key in self._client:
            raise ValueError("branch already in use")
        self._make_room(now_ms, True)
        tx = ClientTransaction(key, request, addr, request.serialize(), now_ms)
        self._client[key] = tx
        self._out.append((tx.data, addr))
        t1 = self.t1
        if method == "INVITE":
            tx.state = CALLING
            tx.retx_interval = t1
            tx.retx_cap = 0  # timer A doubles without the T2 cap
        else:
            tx.state = TRYING
            tx.retx_interval = t1
            tx.retx_cap = self.t2
        tx.retx_at = now_ms + t1
        tx.end_at = now_ms + 64 * t1  # timer B or F
        return tx

    def respond(self, tx, response, now_ms):
        """Send a response through a server transaction (RFC 3261 17.2.1, 17.2.2)."""
        if tx.state in (COMPLETED, CONFIRMED, ACCEPTED, TERMINATED):
            return False  # the final response has been sent already
        data = response.serialize()
        tx.last_response = response
        tx.response_data = data
        self._out.append((data, tx.response_addr))
        status = response.status
        t1 = self.t1
        if status < 200:
            tx.state = PROCEEDING
            if tx.method == "INVITE":
                tx.retx_at = None  # no 100 Trying needed any more
        elif tx.method == "INVITE":
            if status < 300:
                tx.state = ACCEPTED
                tx.retx_at = None
                tx.end_at = now_ms + 64 * t1  # timer L
            else:
                tx.state = COMPLETED
                tx.retx_interval = t1
                tx.retx_cap = self.t2
                tx.retx_at = now_ms + t1  # timer G
                tx.end_at = now_ms + 64 * t1  # timer H
        else:
            tx.state = COMPLETED
            tx.retx_at = None
            tx.end_at = now_ms + 64 * t1  # timer J
        return True

    def receive(self, data, source, now_ms):
        """Feed one datagram (bytes) or an already parsed message. Raises nothing but
        MemoryError."""
        self.stats["received"] += 1
        try:
            if isinstance(data, (bytes, bytearray, memoryview)):
                try:
                    msg = parse(bytes(data))
                except SipError as e:
                    self.stats["parse_errors"] += 1
                    ev = TransactionEvent("error", source=source, now_ms=now_ms)
                    ev.error = e
                    ev.data = data
                    self._events.append(ev)
                    return
            else:
                msg = data
            if msg.is_request:
                self._receive_request(msg, source, now_ms)
            else:
                self._receive_response(msg, source, now_ms)
        except MemoryError:
            raise  # the heap, not the datagram: the UA's shell collects and carries on
        except Exception:  # noqa: BLE001 - a datagram must never break the layer
            self.stats["errors"] += 1

    def tick(self, now_ms):
        for table in (self._client, self._server):
            due = []
            for tx in table.values():
                d = tx.deadline()
                if d is not None and d <= now_ms:
                    due.append(tx)
            for tx in due:
                if tx.is_client:
                    self._fire_client(tx, now_ms)
                else:
                    self._fire_server(tx, now_ms)

    def find_server(self, request):
        """The server transaction a request (e.g. the INVITE a CANCEL names) belongs to."""
        try:
            via = Via.parse(request.get_all("Via")[0])
        except (SipError, IndexError, ValueError):
            return None
        return self._server.get(_server_key(request, via))

    def transactions(self):
        return list(self._client.values()) + list(self._server.values())

    # -- incoming ---------------------------------------------------------------------------

    def _receive_request(self, req, source, now_ms):
        vias = req.get_all("Via")
        if not vias:
            self.stats["dropped"] += 1  # nowhere to send a response: RFC 3261 18.2.1
            return
        via = mark_received(req, source)
        key = _server_key(req, via)
        tx = self._server.get(key)
        method = req.method
        if tx is not None:
            if method == "ACK":
                self._server_ack(tx, req, source, now_ms)
            else:
                self._server_retransmission(tx)
            return
        if method == "ACK":
            tx = self._match_stray_ack(req)
            if tx is not None:
                self._server_ack(tx, req, source, now_ms)
                return
            # The ACK of a 2xx is its own transaction: hand it to the TU.
            self._events.append(TransactionEvent("request", None, req, source, now_ms))
            return
        if not self._make_room(now_ms, False):
            self.stats["overload"] += 1
            return
        tx = ServerTransaction(key, req, source, now_ms)
        self._server[key] = tx
        if method == "INVITE":
            tx.state = PROCEEDING
            tx.retx_at = now_ms + _TRYING_DELAY
            tx.end_at = now_ms + self.timer_c  # guard: the TU never answered
        else:
            tx.state = TRYING
            tx.end_at = now_ms + 64 * self.t1  # guard
        ev = TransactionEvent("request", tx, req, source, now_ms)
        if method == "CANCEL":
            ikey = key[:-1] + ("INVITE",)
            ev.cancel_target = self._server.get(ikey)
        self._events.append(ev)

    def _match_stray_ack(self, ack):
        """The INVITE server transaction a non-2xx ACK on a new branch belongs to, or None.

        RFC 3261 17.1.1.3 says the ACK for a non-2xx reuses the INVITE's branch, but SIPp (and
        some RFC 2543-era phones) send it on a fresh one; unmatched, our 401/486 would be resent
        for 64*T1. Match such an ACK the RFC 2543 way (17.2.3): Call-ID, From tag, To tag (ours,
        from the final response) and CSeq number. The table is bounded, so is the scan."""
        try:
            key = (ack.call_id, ack.from_tag, ack.to_tag, ack.cseq[0])
        except (SipError, IndexError, ValueError, TypeError):
            return None
        if key[2] is None:
            return None
        for tx in self._server.values():
            resp = tx.last_response
            if tx.method != "INVITE" or resp is None or resp.status < 300:
                continue
            try:
                if (resp.call_id, resp.from_tag, resp.to_tag, resp.cseq[0]) == key:
                    return tx
            except (SipError, IndexError, ValueError, TypeError):
                continue
        return None

    def _server_retransmission(self, tx):
        # 17.2.1 / 17.2.2: a retransmitted request gets the last response again, if any.
        if tx.state == ACCEPTED:
            self.stats["absorbed"] += 1  # RFC 6026: the TU retransmits the 2xx on its timer
            return
        if tx.response_data is not None and tx.state != TERMINATED:
            self._out.append((tx.response_data, tx.response_addr))
            self.stats["retransmissions"] += 1
        else:
            self.stats["absorbed"] += 1

    def _server_ack(self, tx, req, source, now_ms):
        if tx.state == COMPLETED:
            tx.state = CONFIRMED
            tx.retx_at = None
            tx.end_at = now_ms + self.t4  # timer I
        elif tx.state == ACCEPTED:
            # An ACK for our 2xx that reused the INVITE's branch: still the TU's business.
            self._events.append(TransactionEvent("request", None, req, source, now_ms))
        else:
            self.stats["absorbed"] += 1

    def _receive_response(self, resp, source, now_ms):
        try:
            via = Via.parse(resp.get_all("Via")[0])
            method = resp.cseq[1]
        except (SipError, IndexError, ValueError, TypeError):
            self.stats["dropped"] += 1
            return
        status = resp.status
        tx = self._client.get((via.params.get("branch"), method))
        if tx is None:
            if method == "INVITE" and 200 <= status < 300:
                self._events.append(TransactionEvent("response", None, resp, source, now_ms))
            else:
                self.stats["dropped"] += 1
            return
        state = tx.state
        if state in (CALLING, TRYING, PROCEEDING):
            tx.last_response = resp
            if status < 200:
                tx.state = PROCEEDING
                if tx.method == "INVITE":
                    tx.retx_at = None  # timer A stops; B is replaced by the guard
                    tx.end_at = now_ms + self.timer_c
                elif state == TRYING:
                    tx.retx_interval = self.t2  # 17.1.2.2: E fires every T2 now
                    tx.retx_at = now_ms + self.t2
            elif tx.method == "INVITE":
                if status < 300:
                    tx.state = ACCEPTED
                    tx.retx_at = None
                    tx.end_at = now_ms + 64 * self.t1  # timer M
                else:
                    ack = build_non2xx_ack(tx.request, resp)
                    tx.ack_data = ack.serialize()
                    self._out.append((tx.ack_data, tx.addr))
                    tx.state = COMPLETED
                    tx.retx_at = None
                    tx.end_at = now_ms + max(_TIMER_D, 64 * self.t1)  # timer D
            else:
                tx.state = COMPLETED
                tx.retx_at = None
                tx.end_at = now_ms + self.t4  # timer K
            self._events.append(TransactionEvent("response", tx, resp, source, now_ms))
        elif state == ACCEPTED and 200 <= status < 300:
            # A retransmitted (or forked) 2xx: the TU ACKs every one of them.
            self._events.append(TransactionEvent("response", tx, resp, source, now_ms))
        elif state == COMPLETED and tx.ack_data is not None and status >= 300:
            self._out.append((tx.ack_data, tx.addr))  # retransmitted final: ACK again
            self.stats["retransmissions"] += 1
        else:
            self.stats["absorbed"] += 1

    # -- timers -----------------------------------------------------------------------------

    def _fire_client(self, tx, now_ms):
        if tx.end_at is not None and tx.end_at <= now_ms:
            del self._client[tx.key]
            if tx.state in (CALLING, TRYING, PROCEEDING):
                self._events.append(TransactionEvent("timeout", tx, now_ms=now_ms))
            tx.state = TERMINATED
            tx.retx_at = tx.end_at = None
            return
        if tx.retx_at is not None and tx.retx_at <= now_ms:
            self._out.append((tx.data, tx.addr))
            self.stats["retransmissions"] += 1
            interval = tx.retx_interval * 2
            if tx.retx_cap and interval > tx.retx_cap:
                interval = tx.retx_cap
            tx.retx_interval = interval
            tx.retx_at = now_ms + interval

    def _fire_server(self, tx, now_ms):
        if tx.end_at is not None and tx.end_at <= now_ms:
            del self._server[tx.key]
            if tx.state == COMPLETED and tx.method == "INVITE":
                # Timer H: the ACK of our non-2xx never came.
                self._events.append(TransactionEvent("timeout", tx, now_ms=now_ms))
            elif tx.state in (TRYING, PROCEEDING):
                # The TU never answered.
                self._events.append(TransactionEvent("timeout", tx, now_ms=now_ms))
            tx.state = TERMINATED
            tx.retx_at = tx.end_at = None
            return
        if tx.retx_at is not None and tx.retx_at <= now_ms:
            if tx.state == PROCEEDING:
                # 17.2.1: 100 Trying because the TU has not answered within 200 ms.
                tx.retx_at = None
                trying = _trying(tx.request)
                if trying is not None:
                    tx.last_response = trying
                    tx.response_data = trying.serialize()
                    self._out.append((tx.response_data, tx.response_addr))
                return
            self._out.append((tx.response_data, tx.response_addr))  # timer G
            self.stats["retransmissions"] += 1
            interval = tx.retx_interval * 2
            if interval > tx.retx_cap:
                interval = tx.retx_cap
            tx.retx_interval = interval
            tx.retx_at = now_ms + interval

    def _make_room(self, now_ms, local):
        """Reap to stay under max_transactions; False when every slot is in progress."""
        if len(self) < self.max_transactions:
            return True
        oldest = None
        for table in (self._client, self._server):
            for tx in table.values():
                if tx.state in _ABSORBING and (oldest is None or tx.created < oldest.created):
                    oldest = tx
        if oldest is None:
            if local:
                raise TransactionLimitError("%d transactions in progress" % len(self))
            return False
        table = self._client if oldest.is_client else self._server
        del table[oldest.key]
        oldest.state = TERMINATED
        oldest.retx_at = oldest.end_at = None
        return True


def _trying(request):
    try:
        return response_for(request, 100, "Trying")
    except (SipError, ValueError, TypeError):
        return None
