# LocalSession: o= version handling across re-INVITEs (RFC 3264 section 8), both runtimes.
from checks import raises

from voip.sdp import SessionDescription, build_offer
from voip.sdp_session import LocalSession

RUNTIMES = ("cpython", "micropython")

DATA = __file__.rsplit("/", 2)[0] + "/data/sdp/"


def load(name):
    with open(DATA + name, "rb") as f:
        return f.read()


def origin(body):
    sd = SessionDescription.parse(body)
    return sd.session_id, sd.session_version


def test_version_grows_by_one_only_when_the_offer_changes():
    local = LocalSession("192.0.2.10", 4000, session_id=777)
    first = local.offer()
    assert origin(first) == (777, 1)
    assert local.offer() == first  # a refresh re-offer: same body, same version
    hold = local.offer("sendonly")
    assert origin(hold) == (777, 2)
    assert "a=sendonly" in hold.decode()
    assert origin(local.offer()) == (777, 2)  # still on hold, unchanged
    resume = local.offer("sendrecv")
    assert origin(resume) == (777, 3)
    assert resume.replace(b" 3 IN", b" 1 IN") == first


def test_answers_to_reoffers_bump_the_version_when_the_answer_changes():
    local = LocalSession("192.0.2.10", 4000, session_id=5)
    body, media = local.answer(load("asterisk_audio_video.sdp"))
    assert origin(body) == (5, 1) and media.direction == "sendrecv"
    assert not local.is_unchanged(load("asterisk_hold.sdp"))
    body, media = local.answer(load("asterisk_hold.sdp"))  # the PBX puts us on hold
    assert origin(body) == (5, 2) and media.direction == "recvonly"
    assert "a=recvonly" in body.decode()
    # the same offer again (same o= version) is a session refresh, and our answer stays put
    assert local.is_unchanged(load("asterisk_hold.sdp"))
    again, _ = local.answer(load("asterisk_hold.sdp"))
    assert again == body


def test_offer_then_answer_through_the_session():
    local = LocalSession("192.0.2.10", 4000, codecs=("PCMA", "PCMU"), session_id=9)
    with raises(ValueError, match="no offer"):
        local.accept_answer(load("baresip.sdp"))
    offer = local.offer()
    assert b"m=audio 4000 RTP/AVP 8 0 101" in offer
    peer = build_offer("198.51.100.4", 7000, codecs=("PCMU",), session_id=44, version=3)
    media = local.accept_answer(peer)
    assert media.codec == "PCMU" and (media.address, media.port) == ("198.51.100.4", 7000)
    assert local.remote_origin == ("-", 44, 3)
    with raises(ValueError, match="no offer"):
        local.accept_answer(peer)  # the offer was answered already
