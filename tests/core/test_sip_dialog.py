# RFC 3261 section 12 dialogs: route sets, targets, CSeq, in-dialog requests. Both runtimes.
from checks import raises

from voip.sip.dialog import (
    CONFIRMED,
    EARLY,
    Dialog,
    request_dialog_id,
    response_dialog_id,
)
from voip.sip.message import SipError, parse, response_for

RUNTIMES = ("cpython", "micropython")
MICROPYTHON_HEAPSIZE = "256K"

INVITE = (
    b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKd1;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b'From: "Alice" <sip:alice@atlanta.example.com>;tag=alice1\r\n'
    b"To: <sip:bob@biloxi.example.com>\r\n"
    b"Call-ID: dlg-1@10.0.0.1\r\n"
    b"CSeq: 314 INVITE\r\n"
    b"Contact: <sip:alice@10.0.0.1:5060>\r\n"
    b"\r\n"
)


def uas_invite():
    # As the UAS gets it, after two record-routing proxies (p2 nearest to the UAS, on top).
    return parse(
        INVITE.replace(
            b"Contact:",
            b"Record-Route: <sip:p2.example.com;lr>\r\nRecord-Route: <sip:p1.example.com;lr>\r\n"
            b"Contact:",
        )
    )


def answer(invite, status=200, rr=True, contact="<sip:bob@10.0.0.2:5062>", tag="bob1"):
    resp = response_for(invite, status, to_tag=tag)
    if rr:
        resp.add("Record-Route", "<sip:p2.example.com;lr>, <sip:p1.example.com;lr>")
    if contact:
        resp.add("Contact", contact)
    return parse(resp.serialize())


def test_uac_dialog_from_2xx_reverses_record_route():
    invite = parse(INVITE)
    d = Dialog.from_uac(invite, answer(invite), "sip:alice@10.0.0.1:5060")
    assert d.state == CONFIRMED
    assert d.id == ("dlg-1@10.0.0.1", "alice1", "bob1")
    assert d.route_set == ["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"]
    assert d.remote_target == "sip:bob@10.0.0.2:5062"
    assert d.local_seq == 314 and d.remote_seq is None
    assert d.next_hop() == ("p1.example.com", 5060)


def test_uac_bye_uses_loose_routing_and_next_cseq():
    invite = parse(INVITE)
    d = Dialog.from_uac(invite, answer(invite), "sip:alice@10.0.0.1:5060")
    bye = parse(d.request("BYE").serialize().replace(
        b"\r\nMax", b"\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKx\r\nMax"))
    assert bye.method == "BYE" and bye.uri == "sip:bob@10.0.0.2:5062"
    assert bye.get_all("Route") == ["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"]
    assert bye.cseq == (315, "BYE")
    assert bye.from_tag == "alice1" and bye.to_tag == "bob1"
    assert bye.call_id == "dlg-1@10.0.0.1"
    assert bye.get("Contact") is None
    reinvite = d.request("INVITE", body=b"v=0\r\n")
    assert reinvite.cseq == (316, "INVITE")
    assert reinvite.get("Contact") == "<sip:alice@10.0.0.1:5060>"
    assert reinvite.get("Content-Type") == "application/sdp" and reinvite.body == b"v=0\r\n"


def test_ack_for_2xx_carries_the_invite_cseq():
    invite = parse(INVITE)
    d = Dialog.from_uac(invite, answer(invite), "sip:alice@10.0.0.1:5060")
    d.request("BYE")  # the local CSeq moving on must not change the ACK's
    ack = d.ack(314)
    assert ack.method == "ACK" and ack.cseq == (314, "ACK")
    assert ack.uri == "sip:bob@10.0.0.2:5062"
    assert ack.get_all("Route") == ["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"]


def test_strict_router_becomes_the_request_uri():
    invite = parse(INVITE)
    resp = response_for(invite, 200, to_tag="s1")
    resp.add("Record-Route", "<sip:strict.example.com;maddr=10.9.9.9>")
    resp.add("Contact", "<sip:bob@10.0.0.2>")
    d = Dialog.from_uac(invite, parse(resp.serialize()), "sip:alice@10.0.0.1")
    bye = d.request("BYE")
    assert bye.uri == "sip:strict.example.com"
    assert bye.get_all("Route") == ["<sip:bob@10.0.0.2>"]


def test_no_route_set_goes_to_the_remote_target():
    invite = parse(INVITE)
    d = Dialog.from_uac(invite, answer(invite, rr=False), "sip:alice@10.0.0.1")
    assert d.route_set == [] and d.next_hop() == ("10.0.0.2", 5062)
    bye = d.request("BYE")
    assert bye.get_all("Route") == [] and bye.uri == "sip:bob@10.0.0.2:5062"


def test_uas_dialog_keeps_record_route_order_and_starts_cseq():
    invite = uas_invite()
    d = Dialog.from_uas(invite, "bob1", "sip:bob@10.0.0.2:5062")
    assert d.id == ("dlg-1@10.0.0.1", "bob1", "alice1")
    assert d.route_set == ["<sip:p2.example.com;lr>", "<sip:p1.example.com;lr>"]
    assert d.remote_target == "sip:alice@10.0.0.1:5060"
    assert d.remote_seq == 314 and d.local_seq is None
    bye = d.request("BYE")
    assert bye.cseq[1] == "BYE" and bye.cseq[0] >= 1
    assert bye.from_tag == "bob1" and bye.to_tag == "alice1"
    assert bye.get_all("Route")[0] == "<sip:p2.example.com;lr>"
    assert d.next_hop() == ("p2.example.com", 5060)


def test_both_sides_compute_the_same_dialog_id():
    invite = uas_invite()
    uas = Dialog.from_uas(invite, "bob1", "sip:bob@10.0.0.2:5062")
    uac = Dialog.from_uac(parse(INVITE), answer(parse(INVITE)), "sip:alice@10.0.0.1:5060")
    bye_from_uac = parse(_with_via(uac.request("BYE")))
    assert request_dialog_id(bye_from_uac) == uas.id
    resp = parse(response_for(bye_from_uac, 200).serialize())
    assert response_dialog_id(resp) == uac.id


def _with_via(req):
    req.insert("Via", "SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKvia")
    return req.serialize()


def test_incoming_cseq_must_not_go_backwards():
    invite = uas_invite()
    d = Dialog.from_uas(invite, "bob1", "sip:bob@10.0.0.2")
    uac = Dialog.from_uac(parse(INVITE), answer(parse(INVITE)), "sip:alice@10.0.0.1")
    reinvite = parse(_with_via(uac.request("INVITE")))
    assert reinvite.cseq[0] == 315
    assert d.check_request(reinvite) == 0 and d.remote_seq == 315
    old = parse(INVITE.replace(b"314 INVITE", b"300 INVITE"))
    assert d.check_request(old) == 500 and d.remote_seq == 315
    ack = parse(INVITE.replace(b"INVITE sip", b"ACK sip").replace(b"314 INVITE", b"1 ACK"))
    assert d.check_request(ack) == 0  # ACK and CANCEL reuse an older CSeq on purpose


def test_target_refresh_and_early_dialog_confirmation():
    invite = parse(INVITE)
    ringing = answer(invite, 180, rr=False, contact="<sip:bob@10.0.0.7>")
    d = Dialog.from_uac(invite, ringing, "sip:alice@10.0.0.1")
    assert d.state == EARLY and d.remote_target == "sip:bob@10.0.0.7" and d.route_set == []
    d.confirm(answer(invite))
    assert d.state == CONFIRMED
    assert d.remote_target == "sip:bob@10.0.0.2:5062"
    assert d.route_set[0] == "<sip:p1.example.com;lr>"
    d.target_refresh(parse(INVITE.replace(b"10.0.0.1:5060>", b"10.0.0.99:5080>")))
    assert d.remote_target == "sip:alice@10.0.0.99:5080"


def test_responses_that_make_no_dialog_are_refused():
    invite = parse(INVITE)
    no_tag = parse(response_for(invite, 180).serialize())
    with raises(SipError, match="tag"):
        Dialog.from_uac(invite, no_tag, "sip:alice@10.0.0.1")
    # RFC 2543 style: no Contact, so the From URI is the remote target (4475 inv2543).
    no_contact = parse(INVITE.replace(b"Contact: <sip:alice@10.0.0.1:5060>\r\n", b""))
    assert Dialog.from_uas(no_contact, "t", "sip:bob@10.0.0.2").remote_target == (
        "sip:alice@atlanta.example.com")
    many = response_for(invite, 200, to_tag="x")
    for i in range(20):
        many.add("Record-Route", "<sip:p%d.example.com;lr>" % i)
    with raises(SipError, match="Record-Route"):
        Dialog.from_uac(invite, parse(many.serialize()), "sip:alice@10.0.0.1")
