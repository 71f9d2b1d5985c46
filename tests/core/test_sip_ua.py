# Two UserAgents talking through an in-memory network (loss, duplication), under both runtimes.
from checks import is_micropython, raises
from sip_network import Network

from voip.sip.digest import DigestServer
from voip.sip.message import parse, response_for
from voip.sip.ua import UaError, UserAgent

RUNTIMES = ("cpython", "micropython")
MICROPYTHON_HEAPSIZE = "512K"

A = ("127.0.0.1", 5061)
B = ("127.0.0.1", 5062)
PBX = ("127.0.0.1", 5060)
STRANGER = ("127.0.0.9", 5060)
OFFER = b"v=0\r\no=a 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" \
        b"m=audio 4000 RTP/AVP 0\r\na=sendrecv\r\n"
ANSWER = OFFER.replace(b"o=a", b"o=b").replace(b"4000", b"4002")
HOLD = OFFER.replace(b"a=sendrecv", b"a=sendonly")


def ua(addr, **kw):
    config = {"user": "a" if addr == A else "b", "local": addr,
              "allowed_hosts": ["127.0.0.1"], "user_agent": "test-ua"}
    config.update(kw)
    answer_offer = config.pop("answer_offer", None)
    return UserAgent(config, answer_offer=answer_offer)


def pair(**kw):
    net = Network()
    a = net.add(A, ua(A, **kw))
    b = net.add(B, ua(B, **kw))
    return net, a, b


def uri(addr, user="b"):
    return "sip:%s@%s:%d" % (user, addr[0], addr[1])


def establish(net, a, b):
    call_id = a.call(uri(B), OFFER, net.now)
    net.settle()
    ev = net.take(B)
    assert [e.kind for e in ev] == ["incoming_call"]
    assert ev[0].call_id == call_id and ev[0].remote_sdp == OFFER
    assert ev[0].remote_uri == "sip:a@127.0.0.1" and ev[0].source == A
    assert net.kinds(A) == ["ringing"]
    net.take(A)
    assert b.answer(call_id, ANSWER, net.now)
    net.settle()
    ev = net.take(A)
    assert [e.kind for e in ev] == ["answered"] and ev[0].remote_sdp == ANSWER
    assert net.kinds(B) == ["answered"]
    net.take(B)
    return call_id


def test_call_answer_and_hangup_both_sides_agree():
    net, a, b = pair()
    call_id = establish(net, a, b)
    assert a.call_state(call_id) == "confirmed" and b.call_state(call_id) == "confirmed"
    assert a.hangup(call_id, net.now)
    net.settle()
    ev_a, ev_b = net.take(A), net.take(B)
    assert [(e.kind, e.reason) for e in ev_a] == [("call_ended", "local_hangup")]
    assert [(e.kind, e.reason) for e in ev_b] == [("call_ended", "remote_bye")]
    assert net.sent(B, A, "SIP/2.0 200")[-1] == "SIP/2.0 200 OK"
    net.run(net.now + 64 * 500)  # everything lingering ends; nothing left to do
    assert a.call_state(call_id) is None and b.call_state(call_id) is None
    assert a.next_deadline() is None and b.next_deadline() is None


def test_callee_hangs_up():
    net, a, b = pair()
    call_id = establish(net, a, b)
    b.hangup(call_id, net.now)
    net.settle()
    assert [(e.kind, e.reason) for e in net.take(A)] == [("call_ended", "remote_bye")]
    assert net.sent(B, A, "BYE ")


def test_reject_busy_and_decline():
    for status in (486, 603):
        net, a, b = pair()
        call_id = a.call(uri(B), OFFER, 0)
        net.settle()
        net.take(A)
        assert b.reject(call_id, status, net.now)
        net.settle()
        ev = net.take(A)
        assert [(e.kind, e.status) for e in ev] == [("call_failed", status)]
        assert [(e.kind, e.status) for e in net.take(B)][-1] == ("call_ended", status)
        assert net.sent(A, B, "ACK ")  # the transaction ACKs the non-2xx


def test_caller_cancels_while_ringing():
    net, a, b = pair()
    call_id = a.call(uri(B), OFFER, 0)
    net.settle()
    net.take(A)
    net.take(B)
    a.hangup(call_id, net.now)
    net.settle()
    assert net.sent(A, B, "CANCEL ")
    assert [(e.kind, e.status) for e in net.take(B)] == [("call_ended", 487)]
    assert [(e.kind, e.reason) for e in net.take(A)] == [("call_ended", "local_hangup")]
    assert "SIP/2.0 487 Request Terminated" in net.sent(B, A)


def test_hangup_before_any_provisional_waits_for_one_to_cancel():
    net, a, b = pair()
    call_id = a.call(uri(B), OFFER, 0)
    a.hangup(call_id, 0)  # the INVITE has not even left yet
    assert not any(line.startswith("CANCEL") for line, _ in
                   [(d.split(b"\r\n")[0].decode(), x) for d, x in a.layer._out])
    net.settle()
    assert net.sent(A, B, "CANCEL ")  # sent once the 180 arrived
    assert [(e.kind, e.status) for e in net.take(B)][-1] == ("call_ended", 487)


def test_lost_200_and_lost_ack_are_recovered_by_retransmission():
    net, a, b = pair()
    lost = {"200": 2, "ACK": 1}

    def fate(data, src, dst):
        if data.startswith(b"SIP/2.0 200") and b"INVITE" in data.split(b"CSeq:")[1][:20]:
            if lost["200"]:
                lost["200"] -= 1
                return 0
        if data.startswith(b"ACK ") and lost["ACK"]:
            lost["ACK"] -= 1
            return 0
        return 1

    net.fate = fate
    call_id = a.call(uri(B), OFFER, 0)
    net.settle()
    net.take(A)
    net.take(B)
    b.answer(call_id, ANSWER, net.now)
    net.run(net.now + 10000)
    assert net.kinds(A) == ["answered"] and net.kinds(B) == ["answered"]
    # B sent its 200 at 0, T1, 2*T1 (two lost) and once more after the lost ACK.
    oks = [line for line in net.sent(B, A, "SIP/2.0 200")]
    assert len(oks) == 4
    assert len(net.sent(A, B, "ACK ")) == 2  # the re-ACK of the retransmitted 2xx


def test_no_ack_ever_ends_the_call_with_bye():
    net, a, b = pair()
    net.fate = lambda data, src, dst: 0 if data.startswith(b"ACK ") else 1
    call_id = a.call(uri(B), OFFER, 0)
    net.settle()
    b.answer(call_id, ANSWER, net.now)
    start = net.now
    net.run(start + 64 * 500 + 1000)
    ev = net.take(B)
    assert [(e.kind, e.status) for e in ev][-1] == ("call_ended", 408)
    assert net.sent(B, A, "BYE ")
    # 200 resent at T1 doubling up to T2 for 64*T1: 1 + 10 copies.
    assert len(net.sent(B, A, "SIP/2.0 200 OK")) >= 10
    assert net.kinds(A)[-1] == "call_ended"


def test_every_datagram_duplicated_still_one_event_each():
    net, a, b = pair()
    net.fate = lambda data, src, dst: 2
    call_id = establish(net, a, b)
    a.update_media(call_id, HOLD, net.now)
    net.settle()
    assert net.kinds(B) == ["media_offer"]
    net.take(B)
    b.answer(call_id, ANSWER, net.now)
    net.settle()
    assert net.kinds(A) == ["media_updated"]
    a.hangup(call_id, net.now)
    net.run(net.now + 40000)
    assert net.kinds(B) == ["media_updated", "call_ended"]


def test_random_loss_still_completes_a_call():
    state = [12345]

    def fate(data, src, dst):
        state[0] = (state[0] * 1103515245 + 12345) & 0x7FFFFFFF
        return 0 if state[0] % 100 < 30 else 1

    net, a, b = pair()
    net.fate = fate
    call_id = a.call(uri(B), OFFER, 0)
    net.run(20000)
    assert "incoming_call" in net.kinds(B)
    b.answer(call_id, ANSWER, net.now)
    net.run(net.now + 20000)
    assert "answered" in net.kinds(A) and "answered" in net.kinds(B)
    a.hangup(call_id, net.now)
    net.run(net.now + 40000)
    assert net.kinds(B)[-1] == "call_ended"


def test_hold_and_unhold_with_an_answer_callback():
    offers = []

    def answerer(call_id, offer):
        offers.append(offer)
        return offer.replace(b"o=a", b"o=b").replace(b"sendonly", b"recvonly")

    net = Network()
    a = net.add(A, ua(A))
    b = net.add(B, ua(B, answer_offer=answerer))
    call_id = establish(net, a, b)
    assert a.update_media(call_id, HOLD, net.now)
    assert not a.update_media(call_id, OFFER, net.now)  # one re-INVITE at a time
    net.settle()
    ev = net.take(A)
    assert [e.kind for e in ev] == ["media_updated"] and b"recvonly" in ev[0].remote_sdp
    assert [e.remote_sdp for e in net.take(B)] == [HOLD] and offers == [HOLD]
    assert a.update_media(call_id, OFFER, net.now)
    net.settle()
    assert net.kinds(A) == ["media_updated"]
    reinvites = [line for line in net.sent(A, B, "INVITE ")]
    assert len(reinvites) == 3


def test_refused_offer_gets_488_and_the_call_goes_on():
    net = Network()
    a = net.add(A, ua(A))
    b = net.add(B, ua(B, answer_offer=lambda call_id, offer: None))
    call_id = establish(net, a, b)
    a.update_media(call_id, HOLD, net.now)
    net.settle()
    assert [(e.kind, e.status) for e in net.take(A)] == [("media_update_failed", 488)]
    assert a.call_state(call_id) == "confirmed"


def test_reinvite_glare_resolves_with_491_and_retry():
    net, a, b = pair(answer_offer=lambda call_id, offer: offer)
    call_id = establish(net, a, b)
    a.update_media(call_id, HOLD, net.now)
    b.update_media(call_id, HOLD, net.now)
    net.run(net.now + 10000)
    assert "SIP/2.0 491 Request Pending" in net.sent(A, B)
    assert "SIP/2.0 491 Request Pending" in net.sent(B, A)
    assert net.kinds(A).count("media_updated") == 2  # its own retry and B's
    assert net.kinds(B).count("media_updated") == 2


def test_ring_timeout_answers_480():
    net, a, b = pair(ring_timeout_ms=30000)
    a.call(uri(B), OFFER, 0)
    net.run(31000)
    assert [(e.kind, e.status) for e in net.take(B)][-1] == ("call_ended", 480)
    assert [(e.kind, e.status) for e in net.take(A)][-1] == ("call_failed", 480)


def test_unanswered_invite_times_out_as_call_failed():
    net = Network()
    a = net.add(A, ua(A))
    a.call(uri(B), OFFER, 0)  # nobody at B
    net.run(40000)
    assert [(e.kind, e.status) for e in net.take(A)] == [("call_failed", 408)]
    assert len(net.sent(A, B, "INVITE ")) == 7  # timer A until timer B


def test_max_calls_busy_and_call_refused_locally():
    net, a, b = pair(max_calls=1)
    establish(net, a, b)
    c_addr = ("127.0.0.1", 5063)
    c = net.add(c_addr, ua(c_addr))
    c.call(uri(B), OFFER, net.now)
    net.settle()
    assert [(e.kind, e.status) for e in net.take(c_addr)] == [("call_failed", 486)]
    with raises(UaError):
        a.call(uri(B), OFFER, net.now)
    with raises(UaError):
        c.call("tel:+15551234", OFFER, net.now)


def test_strangers_are_dropped_silently_or_refused_with_403():
    net, a, b = pair()
    stranger = net.add(STRANGER, ua(STRANGER))
    stranger.call(uri(B), OFFER, 0)
    net.run(40000)
    assert net.kinds(B) == [] and net.sent(B) == []
    assert b.stats["blocked"] == 7
    assert [(e.kind, e.status) for e in net.take(STRANGER)] == [("call_failed", 408)]
    b2_addr = ("127.0.0.1", 5064)
    net.add(b2_addr, ua(b2_addr, blocked_response=403))
    stranger.call(uri(b2_addr), OFFER, net.now)
    net.settle()
    assert [(e.kind, e.status) for e in net.take(STRANGER)] == [("call_failed", 403)]
    # allow() opens the door.
    b.allow(STRANGER[0])
    stranger.call(uri(B), OFFER, net.now)
    net.settle()
    assert net.kinds(B) == ["incoming_call"]


def raw(method, to_tag=None, call_id="raw-1", cseq=1, extra=(), body=b"", ruri="sip:b@127.0.0.1"):
    lines = ["%s %s SIP/2.0" % (method, ruri),
             "Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bKraw%s%d;rport" % (call_id, cseq),
             "Max-Forwards: 70", "From: <sip:a@127.0.0.1>;tag=rf",
             "To: <sip:b@127.0.0.1>" + (";tag=" + to_tag if to_tag else ""),
             "Call-ID: " + call_id, "CSeq: %d %s" % (cseq, method)] + list(extra)
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def answers(b, data, now=0):
    b.receive(data, A, now)
    return [parse(d) for d, addr in b.outgoing()]


def test_out_of_dialog_requests_get_the_right_status():
    b = ua(B)
    opt = answers(b, raw("OPTIONS"))
    assert [r.status for r in opt] == [200]
    assert opt[0].get_all("Allow") == ["INVITE", "ACK", "CANCEL", "BYE", "OPTIONS"]
    assert opt[0].get("Accept") == "application/sdp"
    assert "Supported" in [name for name, value in opt[0].headers]  # empty: no extensions
    assert opt[0].to_tag and opt[0].get("Server") == "test-ua"
    reg = answers(b, raw("REGISTER", call_id="r2"))
    assert [r.status for r in reg] == [405] and reg[0].get("Allow")
    assert [r.status for r in answers(b, raw("FOOBAR", call_id="r3"))] == [501]
    assert [r.status for r in answers(b, raw("BYE", call_id="r4"))] == [481]
    assert [r.status for r in answers(b, raw("BYE", to_tag="x", call_id="r5"))] == [481]
    assert [r.status for r in answers(b, raw("CANCEL", call_id="r6"))] == [481]
    bad = answers(b, raw("OPTIONS", call_id="r7", extra=["Require: 100rel"]))
    assert [r.status for r in bad] == [420] and bad[0].get("Unsupported") == "100rel"
    inv = answers(b, raw("INVITE", call_id="r8", extra=["Contact: <sip:a@127.0.0.1:5061>",
                                                        "Content-Type: text/plain"], body=b"hi"))
    assert [r.status for r in inv] == [415] and inv[0].get("Accept") == "application/sdp"
    assert [r.status for r in answers(b, raw("OPTIONS", call_id="r9", ruri="tel:123"))] == [416]
    assert b.stats["errors"] == 0


def test_in_dialog_checks_cseq_and_answers_options():
    net, a, b = pair()
    call_id = establish(net, a, b)
    dialog = a._calls[call_id].dialog
    opt = dialog.request("OPTIONS")
    opt.insert("Via", "SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bKindlg")
    b.receive(opt.serialize(), A, net.now)
    assert [parse(d).status for d, _ in b.outgoing()] == [200]
    old = dialog.request("OPTIONS")
    old.set("CSeq", "1 OPTIONS")
    old.insert("Via", "SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bKold")
    b.receive(old.serialize(), A, net.now)
    assert [parse(d).status for d, _ in b.outgoing()] == [500]


def test_merged_invite_is_a_loop():
    b = ua(B)
    invite = raw("INVITE", call_id="m1", extra=["Contact: <sip:a@127.0.0.1:5061>"])
    b.receive(invite, A, 0)
    b.outgoing()
    again = invite.replace(b"z9hG4bKrawm11", b"z9hG4bKother")
    assert [parse(d).status for d, _ in (b.receive(again, A, 1) or b.outgoing())] == [482]


def test_invite_without_offer_takes_the_answer_from_the_ack():
    answers_given = []

    def answerer(call_id, offer):
        answers_given.append(offer)
        return ANSWER

    net = Network()
    a = net.add(A, ua(A, answer_offer=answerer))
    b = net.add(B, ua(B))
    with raises(UaError, match="offer"):
        b.call(uri(A, "a"), b"", 0)  # no callback to answer the 200's offer with
    call_id = a.call(uri(B), b"", 0)
    net.settle()
    ev = net.take(B)
    assert ev[0].kind == "incoming_call" and ev[0].remote_sdp is None
    b.answer(call_id, OFFER, net.now)
    net.settle()
    ev = net.take(A)
    assert [e.kind for e in ev] == ["ringing", "answered"] and ev[1].remote_sdp == OFFER
    assert answers_given == [OFFER]
    ev = net.take(B)
    assert [e.kind for e in ev] == ["answered"] and ev[0].remote_sdp == ANSWER  # from the ACK


# -- digest towards a proxy, registration, keepalive --------------------------------------------


class ChallengingProxy:
    """Answers INVITE with 407 until credentials verify, then 200; REGISTER 401 -> 200."""

    def __init__(self, password="pw"):
        self.digest = DigestServer("pbx.test")
        self.password = password
        self.seen = []

    def __call__(self, data, src, now):
        req = parse(data)
        self.seen.append(req)
        if not req.is_request or req.method == "ACK":
            return []
        if req.method in ("INVITE", "REGISTER"):
            header = "Proxy-Authorization" if req.method == "INVITE" else "Authorization"
            auth = req.get(header)
            ok = False
            if auth:
                ok = self.digest.verify(req.method, auth, lambda u: self.password, now)[0]
            if not ok:
                resp = response_for(req, 407 if req.method == "INVITE" else 401, to_tag="px")
                name = "Proxy-Authenticate" if req.method == "INVITE" else "WWW-Authenticate"
                for value in self.digest.challenge(now):
                    resp.add(name, value)
                return [(resp.serialize(), src)]
        resp = response_for(req, 200, to_tag="px")
        if req.method == "INVITE":
            resp.add("Contact", "<sip:agent@127.0.0.1:5060>")
            resp.add("Content-Type", "application/sdp")
            resp.body = ANSWER
        if req.method == "REGISTER":
            resp.add("Contact", req.get("Contact"))
        return [(resp.serialize(), src)]


def test_invite_answers_a_407_with_credentials():
    net = Network()
    proxy = net.add(PBX, ChallengingProxy())
    a = net.add(A, ua(A, registrar=PBX, password="pw", domain="pbx.test"))
    call_id = a.call("sip:agent@127.0.0.1:5060", OFFER, 0)
    net.settle()
    assert [e.kind for e in net.take(A)] == ["answered"]
    invites = [r for r in proxy.seen if r.is_request and r.method == "INVITE"]
    assert len(invites) == 2 and invites[1].get("Proxy-Authorization")
    assert invites[1].cseq[0] == invites[0].cseq[0] + 1 and invites[1].call_id == call_id
    assert [r.method for r in proxy.seen if r.is_request] == ["INVITE", "ACK", "INVITE", "ACK"]


def test_invite_with_wrong_password_fails_instead_of_looping():
    net = Network()
    proxy = net.add(PBX, ChallengingProxy("right"))
    a = net.add(A, ua(A, registrar=PBX, password="wrong"))
    a.call("sip:agent@127.0.0.1:5060", OFFER, 0)
    net.settle()
    assert [(e.kind, e.status) for e in net.take(A)] == [("call_failed", 407)]
    assert len([r for r in proxy.seen if r.is_request and r.method == "INVITE"]) == 2


def test_register_unregister_and_ping_through_the_ua():
    net = Network()
    net.add(PBX, ChallengingProxy())
    a = net.add(A, ua(A, registrar=PBX, password="pw", domain="pbx.test", expires=300))
    assert a.register(0)
    net.settle()
    ev = net.take(A)
    assert [(e.kind, e.expires) for e in ev] == [("registered", 300)] and a.registered
    assert a.ping(net.now)
    net.settle()
    assert [(e.kind, e.status) for e in net.take(A)] == [("keepalive", 200)]
    net.run(300000)  # refreshes happen by themselves
    assert net.kinds(A) == ["registered"]
    net.take(A)
    a.unregister(net.now)
    net.settle()
    assert net.kinds(A) == ["unregistered"] and not a.registered


def test_ping_without_answer_reports_408():
    net = Network()
    a = net.add(A, ua(A, registrar=PBX))
    a.ping(0)
    net.run(40000)
    assert [(e.kind, e.status) for e in net.take(A)] == [("keepalive", 408)]
    assert not ua(B).ping(0)  # no registrar, no proxy: nothing to ping


def test_dialog_making_responses_copy_record_route():
    # Found with Kamailio: without Record-Route in our 180/200 the caller's ACK and BYE skip
    # the proxy (RFC 3261 12.1.1).
    b = ua(B)
    invite = raw("INVITE", call_id="rr1", extra=[
        "Record-Route: <sip:p2.test;lr>, <sip:p1.test;lr>",
        "Contact: <sip:a@127.0.0.1:5061>"])
    b.receive(invite, A, 0)
    (ringing,) = [parse(d) for d, _ in b.outgoing()]
    assert ringing.status == 180
    assert ringing.get_all("Record-Route") == ["<sip:p2.test;lr>", "<sip:p1.test;lr>"]
    b.answer("rr1", ANSWER, 10)
    (ok,) = [parse(d) for d, _ in b.outgoing()]
    assert ok.status == 200 and ok.get_all("Record-Route") == ringing.get_all("Record-Route")
    assert ok.to_tag == ringing.to_tag and ok.body == ANSWER
    # The BYE we send later follows the route set (p2 first on the callee's side).
    b.hangup("rr1", 20)
    assert b.outgoing() == []  # no BYE before the ACK (RFC 3261 15)
    ack = raw("ACK", to_tag=ok.to_tag, call_id="rr1").replace(b"z9hG4bKrawrr11", b"z9hG4bKack")
    b.receive(ack, A, 30)
    (bye,) = [(parse(d), addr) for d, addr in b.outgoing()]
    assert bye[0].method == "BYE" and bye[1] == ("p2.test", 5060)
    assert bye[0].get_all("Route") == ["<sip:p2.test;lr>", "<sip:p1.test;lr>"]


def test_late_copy_of_the_invite_is_ignored_but_a_merged_one_is_482():
    b = ua(B)
    invite = raw("INVITE", call_id="late1", extra=["Contact: <sip:a@127.0.0.1:5061>"])
    b.receive(invite, A, 0)
    b.answer("late1", ANSWER, 10)
    ok = [parse(d) for d, _ in b.outgoing()][-1]
    ack = raw("ACK", to_tag=ok.to_tag, call_id="late1").replace(b"z9hG4bKrawlate11", b"z9hG4bKa")
    b.receive(ack, A, 20)
    b.tick(40000)  # the INVITE server transaction (timer L) is gone
    b.outgoing()
    b.events()
    b.receive(invite, A, 40001)  # the network delivers an old copy
    assert b.outgoing() == [] and b.events() == []
    merged = invite.replace(b"z9hG4bKrawlate11", b"z9hG4bKviaB")
    b.receive(merged, A, 40002)
    assert [parse(d).status for d, _ in b.outgoing()] == [482]
    assert b.call_state("late1") == "confirmed"


def test_many_calls_leave_nothing_behind():
    net, a, b = pair()
    mem = []
    for i in range(12):
        call_id = establish(net, a, b)
        a.update_media(call_id, HOLD, net.now)
        net.settle()
        net.take(B)
        b.answer(call_id, ANSWER, net.now)
        (a if i % 2 else b).hangup(call_id, net.now)
        net.run(net.now + 70000)  # lingering calls and transactions all expire
        net.take(A)
        net.take(B)
        assert len(a._calls) == 0 and len(b._calls) == 0
        assert len(a.layer) == 0 and len(b.layer) == 0
        assert a.next_deadline() is None and b.next_deadline() is None
        net.log = []
        if is_micropython():
            import gc

            gc.collect()
            mem.append(gc.mem_alloc())
    if mem:
        assert mem[-1] - mem[3] < 2048, mem  # steady state: no growth call after call


def test_proxy_then_callee_challenge_keeps_both_credentials():
    proxy_digest, callee_digest = DigestServer("proxy.test"), DigestServer("callee.test")
    seen = []

    def responder(data, src, now):
        req = parse(data)
        if req.method == "BYE":
            seen.append(req)
            auth = req.get("Proxy-Authorization")
            if auth and proxy_digest.verify("BYE", auth, lambda u: "pw", now)[0]:
                return [(response_for(req, 200).serialize(), src)]
            resp = response_for(req, 407)
            for value in proxy_digest.challenge(now):
                resp.add("Proxy-Authenticate", value)
            return [(resp.serialize(), src)]
        if req.method != "INVITE":
            return []
        seen.append(req)
        for digest, status, header in ((proxy_digest, 407, "Proxy-"), (callee_digest, 401, "")):
            auth = req.get(header + "Authorization")
            if not (auth and digest.verify("INVITE", auth, lambda u: "pw", now)[0]):
                resp = response_for(req, status, to_tag="x")
                for value in digest.challenge(now):
                    resp.add("Proxy-Authenticate" if header else "WWW-Authenticate", value)
                return [(resp.serialize(), src)]
        resp = response_for(req, 200, to_tag="ok")
        resp.add("Contact", "<sip:agent@127.0.0.1:5060>")
        return [(resp.serialize(), src)]

    net = Network()
    net.add(PBX, responder)
    a = net.add(A, ua(A, password="pw"))
    call_id = a.call("sip:agent@127.0.0.1:5060", OFFER, 0)
    net.settle()
    assert [e.kind for e in net.take(A)] == ["answered"]
    assert [(r.get("Proxy-Authorization") is not None, r.get("Authorization") is not None)
            for r in seen] == [(False, False), (True, False), (True, True)]
    # The proxy counts nonce uses: the third INVITE reused its nonce with the next count.
    assert "nc=00000002" in seen[2].get("Proxy-Authorization")
    # A PBX that challenges the BYE too gets it again with credentials.
    a.hangup(call_id, net.now)
    net.settle()
    byes = [r for r in seen if r.method == "BYE"]
    assert len(byes) == 2 and byes[1].get("Proxy-Authorization") is not None
    assert byes[1].cseq[0] == byes[0].cseq[0] + 1
