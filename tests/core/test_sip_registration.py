# RegistrationClient against a scripted registrar (DigestServer-backed), time driven explicitly.
from voip.sip.digest import DigestServer
from voip.sip.message import parse, response_for
from voip.sip.registration import RegistrationClient
from voip.sip.transaction import TransactionLayer

RUNTIMES = ("cpython", "micropython")
MICROPYTHON_HEAPSIZE = "256K"

REGISTRAR = ("127.0.0.1", 5060)
ME = ("127.0.0.1", 5070)
CONTACT = "sip:alice@127.0.0.1:5070"


class Registrar:
    """A small registrar: digest (401), Min-Expires (423), scripted failures."""

    def __init__(self, password="secret", max_granted=3600, min_expires=None, nonce_ttl_ms=300000):
        self.digest = DigestServer("pbx.test", nonce_ttl_ms=nonce_ttl_ms)
        self.password = password
        self.max_granted = max_granted
        self.min_expires = min_expires
        self.script = []  # responses to force, in order: status or (status, headers) or None
        self.requests = []
        self.silent = False

    def handle(self, data, now):
        req = parse(data)
        self.requests.append(req)
        if self.silent:
            return None
        if self.script:
            item = self.script.pop(0)
            if item is None:
                return None
            status, headers = item if isinstance(item, tuple) else (item, ())
            resp = response_for(req, status, to_tag="reg")
            for name, value in headers:
                resp.add(name, value)
            return resp.serialize()
        auth = req.get("Authorization")
        if auth is None:
            return self._challenge(req, now, False)
        ok, user, stale, reason = self.digest.verify(
            "REGISTER", auth, lambda u: self.password if u == "alice" else None, now)
        if not ok:
            return self._challenge(req, now, stale)
        asked = int(req.get("Expires"))
        if self.min_expires and 0 < asked < self.min_expires:
            resp = response_for(req, 423, to_tag="reg")
            resp.add("Min-Expires", str(self.min_expires))
            return resp.serialize()
        resp = response_for(req, 200, to_tag="reg")
        granted = min(asked, self.max_granted)
        if granted:
            resp.add("Contact", "<sip:other@192.0.2.1>;expires=999")
            resp.add("Contact", "<%s>;expires=%d" % (CONTACT, granted))
        return resp.serialize()

    def _challenge(self, req, now, stale):
        resp = response_for(req, 401, to_tag="reg")
        for value in self.digest.challenge(now, stale):
            resp.add("WWW-Authenticate", value)
        return resp.serialize()


def make(password="secret", **kw):
    layer = TransactionLayer(sent_by=ME)
    reg = RegistrationClient(layer, "alice", "pbx.test", password, REGISTRAR, CONTACT, **kw)
    return layer, reg


def drive(layer, reg, registrar, start, until, lose=0):
    """Run the three parties from `start` to `until`, jumping from deadline to deadline.
    `lose` drops that many of the first REGISTERs sent. Returns (events, now)."""
    events = []
    now = start
    while True:
        busy = True
        while busy:
            busy = False
            for data, addr in layer.outgoing():
                busy = True
                assert addr == REGISTRAR
                if lose:
                    lose -= 1
                    continue
                answer = registrar.handle(data, now)
                if answer is not None:
                    layer.receive(answer, REGISTRAR, now)
            for ev in layer.events():
                busy = True
                if ev.transaction is not None and ev.transaction.context is not None:
                    ev.transaction.context(ev)
        events.extend(reg.events())
        deadlines = [d for d in (layer.next_deadline(), reg.next_deadline()) if d is not None]
        if not deadlines or min(deadlines) > until:
            return events, now
        now = max(now, min(deadlines))
        layer.tick(now)
        reg.tick(now)


def kinds(events):
    return [e.kind for e in events]


def test_register_answers_the_401_then_refreshes_in_one_round_trip():
    registrar = Registrar()
    layer, reg = make(expires=120)
    reg.register(0)
    events, _ = drive(layer, reg, registrar, 0, 1000)
    assert kinds(events) == ["registered"] and events[0].expires == 120 and reg.registered
    assert [r.get("Authorization") is None for r in registrar.requests] == [True, False]
    first, second = registrar.requests
    assert first.call_id == second.call_id and second.cseq[0] == first.cseq[0] + 1
    assert second.get("Contact") == "<%s>;expires=120" % CONTACT
    assert second.get("To") == "<sip:alice@pbx.test>" and second.uri == "sip:pbx.test"
    # Refresh at 120 s - 40 s (later than half of it), reusing the nonce: nc=2, no 401.
    assert reg.next_deadline() == 80000
    events, now = drive(layer, reg, registrar, 1000, 81000)
    assert kinds(events) == ["registered"]
    third = registrar.requests[2]
    assert len(registrar.requests) == 3 and "nc=00000002" in third.get("Authorization")
    assert third.call_id == first.call_id and third.cseq[0] == second.cseq[0] + 1


def test_long_expiry_refreshes_a_margin_before_it_ends():
    registrar = Registrar()
    layer, reg = make(expires=3600)
    reg.register(0)
    drive(layer, reg, registrar, 0, 100)
    assert reg.granted == 3600
    assert reg.next_deadline() == 3600000 - 40000


def test_granted_expiry_is_read_from_our_contact():
    registrar = Registrar(max_granted=300)
    layer, reg = make(expires=3600)
    reg.register(0)
    events, _ = drive(layer, reg, registrar, 0, 100)
    assert events[-1].expires == 300 and reg.granted == 300  # not the other binding's 999


def test_stale_nonce_is_retried_without_a_failure():
    registrar = Registrar(nonce_ttl_ms=30000)
    layer, reg = make(expires=120)
    reg.register(0)
    drive(layer, reg, registrar, 0, 100)
    events, _ = drive(layer, reg, registrar, 100, 81000)
    # Refresh at 80 s with the old nonce -> 401 stale=true -> new nonce -> 200.
    assert kinds(events) == ["registered"]
    assert len(registrar.requests) == 4
    assert "stale=true" in registrar.digest.challenge(0, True)[0]


def test_wrong_password_fails_with_bounded_exponential_backoff():
    registrar = Registrar(password="right")
    layer, reg = make("wrong", retry_min_ms=1000, retry_max_ms=8000, jitter=False)
    reg.register(0)
    events, now = drive(layer, reg, registrar, 0, 100)
    assert kinds(events) == ["registration_failed"] and events[0].status == 401
    assert events[0].retry_in == 1000 and not reg.registered
    assert len(registrar.requests) == 2  # asked once with credentials, not in a loop
    delays = []
    for _ in range(5):
        events, now = drive(layer, reg, registrar, now, reg.next_deadline())
        delays.append(events[-1].retry_in)
    assert delays == [2000, 4000, 8000, 8000, 8000]
    assert len(registrar.requests) == 12
    # The right password later: success resets the backoff.
    registrar.password = "wrong"
    events, now = drive(layer, reg, registrar, now, reg.next_deadline())
    assert kinds(events) == ["registered"] and reg.failures == 0


def test_backoff_jitter_stays_within_half_and_full_delay():
    registrar = Registrar()
    registrar.script = [503, 503, 503]
    layer, reg = make(retry_min_ms=4000)
    reg.register(0)
    events, now = drive(layer, reg, registrar, 0, 10)
    assert 2000 <= events[0].retry_in <= 4000
    events, now = drive(layer, reg, registrar, now, reg.next_deadline())
    assert 4000 <= events[0].retry_in <= 8000


def test_retry_after_is_honoured_within_the_maximum():
    registrar = Registrar()
    registrar.script = [(503, (("Retry-After", "120"),)), (503, (("Retry-After", "99999"),))]
    layer, reg = make(retry_min_ms=1000, retry_max_ms=600000, jitter=False)
    reg.register(0)
    events, now = drive(layer, reg, registrar, 0, 10)
    assert events[0].status == 503 and events[0].retry_in == 120000
    events, now = drive(layer, reg, registrar, now, reg.next_deadline())
    assert events[0].retry_in == 600000


def test_interval_too_brief_raises_expires_to_min_expires():
    registrar = Registrar(min_expires=1800)
    layer, reg = make(expires=60)
    reg.register(0)
    events, _ = drive(layer, reg, registrar, 0, 100)
    assert kinds(events) == ["registered"] and events[0].expires == 1800
    assert registrar.requests[-1].get("Expires") == "1800"


def test_absurd_min_expires_is_a_failure():
    registrar = Registrar()
    registrar.script = [(423, (("Min-Expires", "999999"),))]
    layer, reg = make(jitter=False)
    reg.register(0)
    events, _ = drive(layer, reg, registrar, 0, 100)
    assert kinds(events) == ["registration_failed"] and events[0].status == 423


def test_silent_registrar_times_out_then_lost_packets_are_retransmitted():
    registrar = Registrar()
    registrar.silent = True
    layer, reg = make(retry_min_ms=10000, jitter=False)
    reg.register(0)
    events, now = drive(layer, reg, registrar, 0, 40000)
    assert kinds(events) == ["registration_failed"] and events[0].status == 408
    assert now == 32000 and len(registrar.requests) == 11  # E retransmissions, then F
    registrar.silent = False
    # Lose the first two copies of the next attempt: timer E gets it through.
    events, now = drive(layer, reg, registrar, now, now + 20000, lose=2)
    assert kinds(events) == ["registered"]


def test_unregister_sends_expires_zero_and_stops_refreshing():
    registrar = Registrar()
    layer, reg = make()
    reg.register(0)
    drive(layer, reg, registrar, 0, 100)
    reg.unregister(200)
    events, _ = drive(layer, reg, registrar, 200, 10 ** 7)
    assert kinds(events) == ["unregistered"] and not reg.registered
    last = registrar.requests[-1]
    assert last.get("Expires") == "0" and last.get("Contact").endswith(";expires=0")
    assert last.get("Authorization") is not None
    assert reg.next_deadline() is None and layer.next_deadline() is None


def test_user_agent_and_outbound_route():
    registrar = Registrar()
    layer, reg = make(user_agent="sipmote/0.1", route="<sip:proxy.test;lr>")
    reg.register(0)
    drive(layer, reg, registrar, 0, 100)
    first = registrar.requests[0]
    assert first.get("User-Agent") == "sipmote/0.1"
    assert first.get("Route") == "<sip:proxy.test;lr>"
    assert first.top_via.host == "127.0.0.1" and first.top_via.port == 5070
