# RFC 3261 section 17 transactions: every timer driven by explicit now_ms, both runtimes.
from checks import raises

from voip.sip.message import Response, SipError, parse, response_for
from voip.sip.transaction import (
    ACCEPTED,
    COMPLETED,
    CONFIRMED,
    PROCEEDING,
    TransactionLayer,
    TransactionLimitError,
)
from voip.sip.transport import error_response

RUNTIMES = ("cpython", "micropython")
MICROPYTHON_HEAPSIZE = "256K"

PEER = ("127.0.0.1", 5070)


def request_bytes(method="INVITE", branch="z9hG4bKtx1", cseq=None, via="127.0.0.1:5070;rport",
                  to_tag=None, call_id="call-1@test", from_tag="ft1"):
    lines = [
        "%s sip:bob@127.0.0.1:5060 SIP/2.0" % method,
        "Via: SIP/2.0/UDP %s;branch=%s" % (via, branch) if branch else "Via: SIP/2.0/UDP " + via,
        "Max-Forwards: 70",
        "From: <sip:alice@127.0.0.1>" + (";tag=" + from_tag if from_tag else ""),
        "To: <sip:bob@127.0.0.1>" + (";tag=" + to_tag if to_tag else ""),
        "Call-ID: " + call_id,
        "CSeq: %d %s" % (cseq or 1, method),
        "Contact: <sip:alice@127.0.0.1:5070>",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def outgoing_request(method="INVITE", branch="z9hG4bKc1"):
    return parse(request_bytes(method, branch))


def reply_to(request, status, to_tag="tt1"):
    resp = response_for(request, status, to_tag=to_tag)
    return resp.serialize()


def send_times(layer, until, step=10, start=0):
    """Tick every `step` ms from start to until; the times at which something was sent."""
    times = []
    t = start
    while t <= until:
        layer.tick(t)
        if layer.outgoing():
            times.append(t)
        t += step
    return times


def kinds(events):
    return [e.kind for e in events]


# -- client INVITE ----------------------------------------------------------------------------


def test_client_invite_timer_a_doubles_and_timer_b_times_out():
    layer = TransactionLayer()
    req = outgoing_request()
    tx = layer.send_request(req, PEER, 0)
    first = layer.outgoing()
    assert len(first) == 1 and first[0][1] == PEER and first[0][0].startswith(b"INVITE ")
    assert layer.next_deadline() == 500
    # Timer A: T1, 2T1, 4T1... without the T2 cap, until timer B (64*T1 = 32 s).
    assert send_times(layer, 31990) == [500, 1500, 3500, 7500, 15500, 31500]
    assert layer.events() == []
    layer.tick(32000)
    ev = layer.events()
    assert kinds(ev) == ["timeout"] and ev[0].transaction is tx
    assert len(layer) == 0 and layer.next_deadline() is None


def test_client_invite_provisional_stops_timer_a():
    layer = TransactionLayer()
    req = outgoing_request()
    tx = layer.send_request(req, PEER, 0)
    layer.outgoing()
    layer.receive(reply_to(req, 180), PEER, 100)
    ev = layer.events()
    assert kinds(ev) == ["response"] and ev[0].response.status == 180
    assert ev[0].transaction is tx and tx.state == PROCEEDING
    assert send_times(layer, 60000, step=100) == []
    assert layer.events() == []  # no timer B once a provisional came


def test_client_invite_non2xx_is_acked_and_retransmission_reacked():
    layer = TransactionLayer()
    req = outgoing_request(branch="z9hG4bKack")
    tx = layer.send_request(req, PEER, 0)
    layer.outgoing()
    layer.receive(reply_to(req, 486, to_tag="busy1"), PEER, 300)
    ev = layer.events()
    assert kinds(ev) == ["response"] and ev[0].response.status == 486
    out = layer.outgoing()
    assert len(out) == 1 and out[0][1] == PEER
    ack = parse(out[0][0])
    assert ack.method == "ACK" and ack.uri == req.uri
    assert ack.top_via.branch == "z9hG4bKack"  # same transaction as the INVITE
    assert ack.cseq == (1, "ACK") and ack.to_tag == "busy1" and ack.call_id == req.call_id
    assert tx.state == COMPLETED
    # The 486 again (our ACK was lost): ACK again, the TU hears nothing new.
    layer.receive(reply_to(req, 486, to_tag="busy1"), PEER, 1000)
    assert layer.events() == []
    assert [parse(d).method for d, _ in layer.outgoing()] == ["ACK"]
    layer.tick(32299)
    assert len(layer) == 1
    layer.tick(32300)  # timer D
    assert len(layer) == 0 and layer.events() == []


def test_client_invite_2xx_retransmissions_reach_the_tu():
    layer = TransactionLayer()
    req = outgoing_request()
    tx = layer.send_request(req, PEER, 0)
    layer.outgoing()
    ok = reply_to(req, 200)
    layer.receive(ok, PEER, 50)
    assert kinds(layer.events()) == ["response"] and tx.state == ACCEPTED
    assert layer.outgoing() == []  # the TU ACKs a 2xx, not the transaction
    layer.receive(ok, PEER, 600)
    ev = layer.events()
    assert kinds(ev) == ["response"] and ev[0].transaction is tx  # RFC 6026 Accepted
    layer.tick(50 + 32000)  # timer M
    assert len(layer) == 0
    layer.receive(ok, PEER, 40000)
    ev = layer.events()
    assert kinds(ev) == ["response"] and ev[0].transaction is None
    # A stray non-2xx is dropped.
    layer.receive(reply_to(req, 486), PEER, 40001)
    assert layer.events() == [] and layer.stats["dropped"] == 1


# -- client non-INVITE ------------------------------------------------------------------------


def test_client_non_invite_timer_e_caps_at_t2_and_timer_f():
    layer = TransactionLayer()
    tx = layer.send_request(outgoing_request("OPTIONS"), PEER, 0)
    layer.outgoing()
    times = send_times(layer, 31990)
    assert times == [500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]
    layer.tick(32000)
    ev = layer.events()
    assert kinds(ev) == ["timeout"] and ev[0].transaction is tx


def test_client_non_invite_provisional_then_final_then_timer_k():
    layer = TransactionLayer()
    req = outgoing_request("REGISTER")
    tx = layer.send_request(req, PEER, 0)
    layer.outgoing()
    layer.receive(reply_to(req, 100), PEER, 200)
    assert kinds(layer.events()) == ["response"]
    # In Proceeding timer E fires every T2.
    assert send_times(layer, 9000, start=210) == [4200, 8200]
    layer.receive(reply_to(req, 200), PEER, 9000)
    assert kinds(layer.events()) == ["response"] and tx.state == COMPLETED
    layer.receive(reply_to(req, 200), PEER, 9100)
    assert layer.events() == [] and layer.outgoing() == []  # absorbed
    layer.tick(13999)
    assert len(layer) == 1
    layer.tick(14000)  # timer K = T4
    assert len(layer) == 0


def test_response_matched_by_branch_and_cseq_method():
    layer = TransactionLayer()
    invite = outgoing_request("INVITE", branch="z9hG4bKsame")
    inv_tx = layer.send_request(invite, PEER, 0)
    cancel = outgoing_request("CANCEL", branch="z9hG4bKsame")
    cancel_tx = layer.send_request(cancel, PEER, 10)
    layer.outgoing()
    layer.receive(reply_to(cancel, 200), PEER, 20)
    ev = layer.events()
    assert ev[0].transaction is cancel_tx and cancel_tx.state == COMPLETED
    assert inv_tx.state != COMPLETED
    layer.receive(reply_to(invite, 487), PEER, 30)
    ev = layer.events()
    assert ev[0].transaction is inv_tx and ev[0].response.status == 487


def test_configurable_t1_t2_t4():
    layer = TransactionLayer(t1=100, t2=400, t4=1000)
    layer.send_request(outgoing_request("OPTIONS"), PEER, 0)
    layer.outgoing()
    assert send_times(layer, 1500) == [100, 300, 700, 1100, 1500]
    layer.tick(6399)
    assert layer.events() == []
    layer.tick(6400)  # F = 64 * T1
    assert kinds(layer.events()) == ["timeout"]


# -- server INVITE ----------------------------------------------------------------------------


def test_server_invite_sends_100_trying_only_when_tu_is_slow():
    layer = TransactionLayer()
    layer.receive(request_bytes(), PEER, 0)
    ev = layer.events()
    assert kinds(ev) == ["request"] and ev[0].request.method == "INVITE"
    tx = ev[0].transaction
    assert layer.outgoing() == []
    layer.tick(199)
    assert layer.outgoing() == []
    layer.tick(200)
    out = layer.outgoing()
    assert len(out) == 1 and parse(out[0][0]).status == 100
    # A TU that answers at once: no 100.
    layer.respond(tx, response_for(ev[0].request, 180, to_tag="x"), 300)
    layer.outgoing()
    other = TransactionLayer()
    other.receive(request_bytes(branch="z9hG4bKfast"), PEER, 0)
    req = other.events()[0]
    other.respond(req.transaction, response_for(req.request, 180, to_tag="y"), 5)
    assert [parse(d).status for d, _ in other.outgoing()] == [180]
    other.tick(1000)
    assert other.outgoing() == []


def test_server_invite_retransmission_gets_last_provisional():
    layer = TransactionLayer()
    data = request_bytes()
    layer.receive(data, PEER, 0)
    ev = layer.events()[0]
    layer.respond(ev.transaction, response_for(ev.request, 180, to_tag="r"), 10)
    layer.outgoing()
    layer.receive(data, PEER, 500)
    assert layer.events() == []  # the TU sees the INVITE once
    out = layer.outgoing()
    assert [parse(d).status for d, _ in out] == [180]


def test_server_invite_non2xx_timer_g_until_ack_then_timer_i():
    layer = TransactionLayer()
    layer.receive(request_bytes(branch="z9hG4bKg"), PEER, 0)
    ev = layer.events()[0]
    tx = ev.transaction
    layer.respond(tx, response_for(ev.request, 486, to_tag="b"), 100)
    assert [parse(d).status for d, _ in layer.outgoing()] == [486]
    # Timer G: T1 doubling, capped at T2.
    assert send_times(layer, 12000, start=110) == [600, 1600, 3600, 7600, 11600]
    ack = request_bytes("ACK", branch="z9hG4bKg", to_tag="b")
    layer.receive(ack, PEER, 12000)
    assert layer.events() == [] and tx.state == CONFIRMED  # absorbed
    assert send_times(layer, 16000, start=12010) == []
    layer.receive(ack, PEER, 13000)
    assert layer.events() == []
    layer.tick(17000)  # timer I = T4 after the ACK
    assert len(layer) == 0


def test_server_invite_non2xx_ack_on_a_new_branch_stops_timer_g():
    # SIPp ACKs a 401 on a fresh branch; matched by Call-ID, tags and CSeq (RFC 3261 17.2.3),
    # it must confirm the transaction rather than leave our 401 retransmitting for 32 s.
    layer = TransactionLayer()
    layer.receive(request_bytes(branch="z9hG4bKold"), PEER, 0)
    ev = layer.events()[0]
    tx = ev.transaction
    layer.respond(tx, response_for(ev.request, 401, to_tag="b"), 10)
    layer.outgoing()
    layer.receive(request_bytes("ACK", branch="z9hG4bKnew", to_tag="b"), PEER, 100)
    assert layer.events() == [] and tx.state == CONFIRMED
    assert send_times(layer, 5000, start=110) == []
    # An ACK with another To tag is not this transaction's: it goes to the TU.
    layer.receive(request_bytes("ACK", branch="z9hG4bKx", to_tag="other"), PEER, 200)
    assert kinds(layer.events()) == ["request"]


def test_server_invite_timer_h_without_ack():
    layer = TransactionLayer()
    layer.receive(request_bytes(branch="z9hG4bKh"), PEER, 0)
    ev = layer.events()[0]
    layer.respond(ev.transaction, response_for(ev.request, 603, to_tag="d"), 0)
    layer.tick(31999)
    assert layer.events() == []
    layer.tick(32000)
    ev2 = layer.events()
    assert kinds(ev2) == ["timeout"] and ev2[0].transaction is ev.transaction
    assert len(layer) == 0


def test_server_invite_2xx_leaves_retransmission_to_the_tu():
    layer = TransactionLayer()
    data = request_bytes(branch="z9hG4bKok")
    layer.receive(data, PEER, 0)
    ev = layer.events()[0]
    layer.respond(ev.transaction, response_for(ev.request, 200, to_tag="o"), 10)
    assert len(layer.outgoing()) == 1 and ev.transaction.state == ACCEPTED
    assert send_times(layer, 5000, start=20) == []  # no timer G for a 2xx
    layer.receive(data, PEER, 600)  # a retransmitted INVITE is absorbed
    assert layer.events() == [] and layer.outgoing() == []
    # The ACK of a 2xx is a new transaction: straight to the TU.
    layer.receive(request_bytes("ACK", branch="z9hG4bKnew", to_tag="o"), PEER, 700)
    ev2 = layer.events()
    assert kinds(ev2) == ["request"] and ev2[0].request.method == "ACK"
    assert ev2[0].transaction is None
    # respond() after the final response is refused.
    assert not layer.respond(ev.transaction, response_for(ev.request, 500), 800)
    layer.tick(10 + 32000)  # timer L
    assert len(layer) == 0


def test_cancel_finds_the_invite_server_transaction():
    layer = TransactionLayer()
    layer.receive(request_bytes(branch="z9hG4bKcan"), PEER, 0)
    invite_tx = layer.events()[0].transaction
    layer.receive(request_bytes("CANCEL", branch="z9hG4bKcan"), PEER, 50)
    ev = layer.events()
    assert kinds(ev) == ["request"] and ev[0].request.method == "CANCEL"
    assert ev[0].cancel_target is invite_tx and ev[0].transaction is not invite_tx
    layer.receive(request_bytes("CANCEL", branch="z9hG4bKother"), PEER, 60)
    assert layer.events()[0].cancel_target is None


# -- server non-INVITE ------------------------------------------------------------------------


def test_server_non_invite_absorbs_then_replays_final_then_timer_j():
    layer = TransactionLayer()
    data = request_bytes("OPTIONS", branch="z9hG4bKo")
    layer.receive(data, PEER, 0)
    ev = layer.events()[0]
    layer.receive(data, PEER, 100)  # before the answer: absorbed
    assert layer.events() == [] and layer.outgoing() == []
    layer.respond(ev.transaction, response_for(ev.request, 200), 200)
    assert len(layer.outgoing()) == 1
    layer.receive(data, PEER, 300)
    assert [parse(d).status for d, _ in layer.outgoing()] == [200]
    assert layer.events() == []
    layer.tick(200 + 31999)
    assert len(layer) == 1
    layer.tick(200 + 32000)  # timer J
    assert len(layer) == 0
    layer.receive(data, PEER, 40000)  # a new transaction now
    assert kinds(layer.events()) == ["request"]


def test_unanswered_server_transaction_is_reaped_by_its_guard():
    layer = TransactionLayer()
    layer.receive(request_bytes("OPTIONS", branch="z9hG4bKlost"), PEER, 0)
    layer.events()
    layer.tick(32000)
    assert kinds(layer.events()) == ["timeout"] and len(layer) == 0


# -- Via: received and rport (RFC 3581) -------------------------------------------------------


def test_rport_sends_responses_to_the_source_port():
    layer = TransactionLayer()
    nat = ("203.0.113.9", 40001)
    layer.receive(request_bytes("OPTIONS", via="192.168.1.20:5060;rport"), nat, 0)
    ev = layer.events()[0]
    via = ev.request.top_via
    assert via.params["received"] == "203.0.113.9" and via.params["rport"] == "40001"
    layer.respond(ev.transaction, response_for(ev.request, 200), 1)
    data, addr = layer.outgoing()[0]
    assert addr == nat
    assert parse(data).top_via.params["rport"] == "40001"


def test_without_rport_responses_go_to_source_ip_and_sent_by_port():
    layer = TransactionLayer()
    layer.receive(request_bytes("OPTIONS", via="192.168.1.20:5062"), ("203.0.113.9", 40001), 0)
    ev = layer.events()[0]
    assert ev.request.top_via.params["received"] == "203.0.113.9"
    assert "rport" not in ev.request.top_via.params
    layer.respond(ev.transaction, response_for(ev.request, 200), 1)
    assert layer.outgoing()[0][1] == ("203.0.113.9", 5062)
    # A Via naming the source exactly gets no received parameter.
    layer.receive(request_bytes("OPTIONS", branch="z9hG4bK2", via="127.0.0.1:5070"), PEER, 2)
    ev = layer.events()[0]
    assert "received" not in ev.request.top_via.params
    assert ev.transaction.response_addr == PEER


# -- RFC 2543 matching, limits, robustness ----------------------------------------------------


def test_rfc2543_request_without_magic_cookie_still_matches():
    layer = TransactionLayer()
    data = request_bytes(branch=None, via="127.0.0.1:5070")
    layer.receive(data, PEER, 0)
    ev = layer.events()
    assert kinds(ev) == ["request"]
    layer.respond(ev[0].transaction, response_for(ev[0].request, 404, to_tag="nf"), 10)
    layer.outgoing()
    layer.receive(data, PEER, 20)
    assert layer.events() == []
    assert [parse(d).status for d, _ in layer.outgoing()] == [404]
    layer.receive(request_bytes("ACK", branch=None, via="127.0.0.1:5070", to_tag="nf"), PEER, 30)
    assert layer.events() == [] and ev[0].transaction.state == CONFIRMED


def test_transaction_limit_reaps_finished_ones_and_drops_the_rest():
    layer = TransactionLayer(max_transactions=3)
    for i in range(3):
        layer.receive(request_bytes("OPTIONS", branch="z9hG4bKcap%d" % i), PEER, i)
    first = layer.events()
    assert len(first) == 3
    layer.receive(request_bytes("OPTIONS", branch="z9hG4bKcap9"), PEER, 10)
    assert layer.events() == [] and layer.stats["overload"] == 1
    with raises(TransactionLimitError):
        layer.send_request(outgoing_request("OPTIONS", branch="z9hG4bKmine"), PEER, 11)
    # A completed transaction is reaped to make room; the oldest goes first.
    layer.respond(first[2].transaction, response_for(first[2].request, 200), 12)
    layer.respond(first[1].transaction, response_for(first[1].request, 200), 13)
    layer.send_request(outgoing_request("OPTIONS", branch="z9hG4bKmine"), PEER, 14)
    assert len(layer) == 3
    left = layer.transactions()
    assert first[2].transaction in left and first[0].transaction in left
    assert first[1].transaction not in left


def test_garbage_never_raises_and_is_reported():
    layer = TransactionLayer()
    for junk in (b"", b"\r\n\r\n", b"\x00\xff" * 50, b"INVITE", b"SIP/2.0 200 OK\r\n\r\n",
                 request_bytes()[:40], b"OPTIONS sip:a SIP/2.0\r\nVia: x\r\n\r\n"):
        layer.receive(junk, PEER, 0)
    ev = layer.events()
    assert ev and all(e.kind == "error" for e in ev)
    assert layer.stats["parse_errors"] == len(ev) and layer.outgoing() == []
    layer.receive(Response(200, "OK"), PEER, 0)  # a message object without headers
    assert layer.events() == []


def test_error_response_salvages_what_routes_a_400():
    data = request_bytes().replace(b"Call-ID: call-1@test\r\n", b"")
    with raises(SipError) as caught:
        parse(data)
    e = caught.value
    resp = error_response(data, e)
    assert resp.status == 400 and "Call-ID" in resp.reason
    wire = resp.serialize().replace(b"\r\nContent-Length", b"\r\nCall-ID: x\r\nContent-Length")
    again = parse(wire)
    assert again.top_via.branch == "z9hG4bKtx1" and again.cseq == (1, "INVITE")
    assert error_response(b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP a\r\nCSeq: 1 A\r\n\r\n", e) is None
    assert error_response(b"\xff\xfe", e) is None
    assert error_response(b"INVITE sip:a SIP/2.0\r\nCSeq: 1 INVITE\r\n\r\n", e) is None
