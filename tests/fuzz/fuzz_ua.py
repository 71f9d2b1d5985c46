# tests/fuzz/fuzz_ua.py: the device's SIP user agent (voip.sip.ua.UserAgent) fed hostile
# datagrams, with what must hold after each one checked. Shared by the hypothesis properties,
# the atheris runner and the MicroPython mutation run; imports only the SIP side of the core so
# that a small MicroPython heap holds it. MIT licence.
#
# After every datagram: nothing raised out of receive() or tick() and nothing was counted as an
# internal error; everything the UA sent parses with our own parser; every response went to the
# source address; a stranger (not the registrar, not allowed) got nothing unless it named a
# call the UA has (in-dialog requests may come from anywhere the dialog leads); the
# transaction and call tables stayed within their bounds. At the end, a valid OPTIONS still
# gets its 200.
import gc

from voip.sip.message import SipError, parse
from voip.sip.ua import UserAgent

UA_ADDR = ("127.0.0.1", 5060)
PEER = ("127.0.0.1", 5099)  # the registrar: an allowed source
STRANGER = ("127.0.0.2", 5099)  # not allowed
OPTIONS_PROBE = (
    b"OPTIONS sip:ua@127.0.0.1:5060 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bKprobe%d;rport\r\nMax-Forwards: 70\r\n"
    b"From: <sip:probe@127.0.0.1>;tag=p%d\r\nTo: <sip:ua@127.0.0.1>\r\n"
    b"Call-ID: probe%d@127.0.0.1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
)


def new_ua(max_transactions=32):
    return UserAgent({"user": "ua", "password": "pw", "local": UA_ADDR,
                      "registrar": PEER, "allowed_hosts": []},
                     max_transactions=max_transactions)


def _call_id(data):
    """The Call-ID a datagram names, if it parses (the UA admits a stranger's request only
    when it parses and names one of its calls)."""
    try:
        return parse(data).call_id
    except SipError:
        return None


class UaFeeder:
    def __init__(self, ua=None):
        self.ua = ua or new_ua()
        self.now = 1000
        self.sent = 0
        self.probes = 0
        self.events = 0
        self.out_of_memory = 0

    def feed(self, data, source=PEER, step_ms=7):
        ua = self.ua
        self.now += step_ms
        known = list(ua._calls)
        try:
            ua.receive(data, source, self.now)
        except MemoryError:
            # The one exception receive() lets out (a full heap is not the input's fault):
            # the shell (phone.sip_task) collects and carries on; so does this.
            self.out_of_memory += 1
            gc.collect()
        stranger_ok = source == STRANGER and _call_id(data) in known
        self._drain(source == STRANGER and not stranger_ok, len(data))

    def tick(self, ms):
        self.now += ms
        self.ua.tick(self.now)
        self._drain(False, None)

    def settle(self, limit=200):
        """Run every timer to its end (jumping from deadline to deadline): the UA is idle
        after this. Returns the number of jumps; fails if the UA never goes quiet."""
        for jumps in range(limit):
            deadline = self.ua.next_deadline()
            if deadline is None:
                return jumps
            self.tick(max(0, deadline - self.now) + 1)
        raise AssertionError("the UA still has timers after %d jumps" % limit)

    def _drain(self, must_be_silent, request_size):
        ua = self.ua
        for wire, addr in ua.outgoing():
            self.sent += 1
            if must_be_silent:
                raise AssertionError("answered a stranger: %r" % bytes(wire[:60]))
            try:
                msg = parse(wire)  # what we send parses with our own parser ...
            except SipError:
                # ... except the 400 to a request parse() refused, which copies its raw
                # headers (so the client can match it): fuzz_targets checks those.
                assert request_size is not None and wire[8:9] in b"45", bytes(wire[:60])
                assert len(wire) <= request_size + 160
                continue
            if not msg.is_request:
                assert addr[0] in (PEER[0], STRANGER[0]), "a response went to %r" % (addr,)
        self.events += len(ua.events())
        assert ua.stats["errors"] == 0, repr(ua.last_error)
        assert len(ua.layer) <= ua.layer.max_transactions
        assert len(ua._calls) <= 2 * ua.max_calls + 2

    def answers_options(self):
        """A valid OPTIONS from the registrar's address gets a 200: the UA still works."""
        self.probes += 1
        n = self.probes
        self.now += 10
        self.ua.receive(OPTIONS_PROBE % (n, n, n), PEER, self.now)
        ok = False
        for wire, addr in self.ua.outgoing():
            msg = parse(wire)
            if addr[0] == PEER[0] and not msg.is_request and msg.status == 200:
                ok = True
        return ok


def check_ua(datagrams):
    """A sequence of (datagram, from_stranger) into one UA; then every timer runs and a valid
    OPTIONS gets its 200."""
    feeder = UaFeeder()
    for i, (data, stranger) in enumerate(datagrams):
        feeder.feed(data, STRANGER if stranger else PEER)
        if i % 8 == 7:
            feeder.tick(700)
    feeder.settle()  # retransmissions, ring timeouts (120 s), lingering calls: all done
    assert len(feeder.ua.layer) == 0 and not feeder.ua._calls
    assert feeder.answers_options()
    return feeder


def split_datagrams(data, limit=16):
    """One fuzzer input -> up to `limit` (datagram, from_stranger) pairs: each starts with a
    byte (low bit: stranger; the rest times 4: its length, 0 meaning "to the end")."""
    out = []
    i = 0
    while i < len(data) and len(out) < limit:
        head = data[i]
        i += 1
        n = (head >> 1) * 4 or len(data) - i
        out.append((data[i : i + n], bool(head & 1)))
        i += n
    return out
