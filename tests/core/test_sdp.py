# SDP parsing and offer/answer, under CPython and the MicroPython unix port, against offers shaped
# as Asterisk, FreeSWITCH, Kamailio+rtpengine, Linphone, baresip and SIPp send them.
from checks import raises

from voip.sdp import (
    NoCommonCodec,
    SessionDescription,
    accept_answer,
    answer,
    build_offer,
)

RUNTIMES = ("cpython", "micropython")
MICROPYTHON_HEAPSIZE = "256K"

DATA = __file__.rsplit("/", 2)[0] + "/data/sdp/"


def load(name):
    with open(DATA + name, "rb") as f:
        return f.read()


def lines_of(body):
    text = body.decode() if isinstance(body, bytes) else body
    assert text.endswith("\r\n"), "SDP we build ends with CRLF"
    return text[:-2].split("\r\n")


def m_lines(body):
    return [line for line in lines_of(body) if line.startswith("m=")]


def answer_pcmu(name, **kw):
    return answer(load(name), "192.0.2.200", 40000, session_id=99, **kw)


# ---- parsing what peers send -------------------------------------------------------------


def test_parse_asterisk_audio_and_video():
    sd = SessionDescription.parse(load("asterisk_audio_video.sdp"))
    assert sd.origin_username == "-"
    assert sd.session_id == 1712345678 and sd.session_version == 1712345678
    assert sd.origin_address.address == "203.0.113.10"
    assert sd.session_name == "Asterisk"
    assert [m.media for m in sd.media] == ["audio", "video"]
    audio, video = sd.media
    assert audio.port == 17324 and audio.proto == "RTP/AVP"
    assert audio.formats == ["9", "0", "8", "111", "101"]
    assert audio.payload_types() == [9, 0, 8, 111, 101]
    assert audio.rtpmap[111] == ("opus", 48000, 2)
    assert audio.rtpmap[101] == ("telephone-event", 8000, 1)
    assert audio.fmtp[101] == "0-16"
    assert audio.ptime == 20 and audio.maxptime == 150
    assert audio.direction == "sendrecv"
    assert audio.connection.address == "203.0.113.10"  # inherited from the session level
    assert video.rtpmap[99] == ("H264", 90000, 1)
    assert video.fmtp[99] == "profile-level-id=42801F;packetization-mode=1"
    assert video.port == 13948


def test_crlf_and_lf_parse_alike():
    crlf = load("asterisk_audio_video.sdp")
    lf = crlf.replace(b"\r\n", b"\n")
    assert b"\r" not in lf
    a, b = SessionDescription.parse(crlf), SessionDescription.parse(lf)
    assert [m.formats for m in a.media] == [m.formats for m in b.media]
    assert a.media[0].rtpmap == b.media[0].rtpmap
    assert a.media[1].fmtp == b.media[1].fmtp
    # and a str parses like its bytes
    c = SessionDescription.parse(crlf.decode())
    assert c.media[0].rtpmap == a.media[0].rtpmap


def test_parse_rtpengine_media_level_connection_ice_and_rtcp():
    sd = SessionDescription.parse(load("kamailio_rtpengine_ice.sdp"))
    assert sd.connection is None  # only the m= section has a c=
    audio = sd.media[0]
    assert audio.connection.address == "203.0.113.1"
    assert audio.rtcp_port == 30013 and audio.rtcp_connection is None
    assert audio.rtcp_mux
    candidates = [v for n, v in audio.attributes if n == "candidate"]
    assert len(candidates) == 3
    assert candidates[2].endswith("2001:db8:4321::1 30014 typ host")
    assert audio.attribute("end-of-candidates") is True
    assert audio.attribute("ice-ufrag") == "Xz3pQk1v"
    assert audio.attribute("crypto") is None


def test_parse_ipv6_connection_and_rtcp_address():
    sd = SessionDescription.parse(load("kamailio_rtpengine_ipv6.sdp"))
    assert sd.origin_address.addrtype == "IP6"
    audio = sd.media[0]
    assert audio.connection.addrtype == "IP6"
    assert audio.connection.address == "2001:db8:4321::1"
    assert audio.rtcp_connection.address == "2001:db8:4321::1"
    assert audio.rtcp_port == 30021


def test_parse_linphone_session_attributes_and_wildcard_rtcp_fb():
    sd = SessionDescription.parse(load("linphone_audio_video.sdp"))
    assert sd.origin_username == "alice"
    assert sd.session_version == 1507
    assert sd.attribute("record") == "off"
    assert sd.attribute("rtcp-xr").startswith("rcvr-rtt=all:10000")
    audio, video = sd.media
    assert audio.codec(18) == ("G729", 8000, 1)  # static, named only by a=fmtp
    assert audio.fmtp[18] == "annexb=yes"
    assert audio.codec(0) == ("PCMU", 8000, 1)  # static, no rtpmap at all
    assert video.proto == "RTP/AVPF"


def test_parse_crypto_lines_are_kept_not_interpreted():
    sd = SessionDescription.parse(load("linphone_srtp.sdp"))
    audio = sd.media[0]
    assert audio.is_secure()
    suites = [v.split()[1] for n, v in audio.attributes if n == "crypto"]
    assert suites == [
        "AES_CM_128_HMAC_SHA1_80",
        "AES_CM_128_HMAC_SHA1_32",
        "AES_256_CM_HMAC_SHA1_80",
    ]


def test_parse_every_sample():
    names = [
        "asterisk_audio_video.sdp",
        "asterisk_hold.sdp",
        "asterisk_srtp.sdp",
        "freeswitch.sdp",
        "freeswitch_savpf_avp.sdp",
        "kamailio_rtpengine_ice.sdp",
        "kamailio_rtpengine_ipv6.sdp",
        "linphone_audio_video.sdp",
        "linphone_srtp.sdp",
        "baresip.sdp",
        "baresip_ipv6_ice.sdp",
        "sipp_uac.sdp",
        "sipp_uac_pcap.sdp",
        "old_hold_null_address.sdp",
        "g729_only.sdp",
    ]
    for name in names:
        sd = SessionDescription.parse(load(name))
        assert sd.media, name
        for section in sd.media:
            assert section.connection is not None, name


# ---- answering them ---------------------------------------------------------------------


def test_answer_asterisk_takes_pcmu_and_rejects_video_in_place():
    body, media = answer_pcmu("asterisk_audio_video.sdp")
    assert m_lines(body) == ["m=audio 40000 RTP/AVP 0 101", "m=video 0 RTP/AVP 99 34"]
    assert media.codec == "PCMU" and media.payload_type == 0
    assert media.telephone_event == 101
    assert media.address == "203.0.113.10" and media.port == 17324
    assert media.rtcp_port == 17325  # no a=rtcp: the next port up
    assert media.ptime == 20 and media.maxptime == 150
    assert media.direction == "sendrecv" and media.sends and media.receives
    assert media.remote_version == 1712345678
    lines = lines_of(body)
    assert lines[0] == "v=0"
    assert lines[1] == "o=- 99 1 IN IP4 192.0.2.200"
    assert "c=IN IP4 192.0.2.200" in lines
    assert "a=rtpmap:101 telephone-event/8000" in lines
    assert "a=ptime:20" in lines and "a=sendrecv" in lines
    # what we send re-parses, with the same number of m= lines in the same order
    again = SessionDescription.parse(body)
    assert [(m.media, m.port) for m in again.media] == [("audio", 40000), ("video", 0)]


def test_answer_follows_configured_preference():
    _, media = answer_pcmu("asterisk_audio_video.sdp", preference=("PCMA", "PCMU"))
    assert media.codec == "PCMA" and media.payload_type == 8
    _, media = answer_pcmu("kamailio_rtpengine_ice.sdp", preference=("PCMU", "PCMA"))
    assert media.codec == "PCMU"  # our preference, not the offer's order (8 0)
    _, media = answer_pcmu("sipp_uac_pcap.sdp", preference=("PCMU", "PCMA"))
    assert media.codec == "PCMA"  # PCMU not offered: the next preference


def test_answer_freeswitch_picks_the_8000_hz_telephone_event():
    body, media = answer_pcmu("freeswitch.sdp")
    assert media.telephone_event == 100  # 101 is telephone-event/48000 here
    assert m_lines(body) == ["m=audio 40000 RTP/AVP 0 100"]
    assert media.rtcp_port == 24581 and media.rtcp_address == "198.51.100.20"


def test_answer_linphone_telephone_event_100_and_avpf_video_rejected():
    body, media = answer_pcmu("linphone_audio_video.sdp")
    assert media.telephone_event == 100
    assert m_lines(body) == ["m=audio 40000 RTP/AVP 0 100", "m=video 0 RTP/AVPF 96"]


def test_answer_rtpengine_ipv6_and_telephone_event_96():
    body, media = answer(load("kamailio_rtpengine_ipv6.sdp"), "2001:db8::5", 40000, session_id=3)
    assert media.address == "2001:db8:4321::1" and media.address_type == "IP6"
    assert media.rtcp_port == 30021
    assert media.telephone_event == 96
    lines = lines_of(body)
    assert "o=- 3 1 IN IP6 2001:db8::5" in lines
    assert "c=IN IP6 2001:db8::5" in lines
    assert "a=rtpmap:96 telephone-event/8000" in lines


def test_answer_rtcp_mux_only_when_both_want_it():
    body, media = answer_pcmu("kamailio_rtpengine_ice.sdp")
    assert "a=rtcp-mux" not in lines_of(body)
    assert not media.rtcp_mux and media.rtcp_port == 30013
    body, media = answer_pcmu("kamailio_rtpengine_ice.sdp", rtcp_mux=True)
    assert "a=rtcp-mux" in lines_of(body)
    assert media.rtcp_mux and media.rtcp_port == 30012
    body, media = answer_pcmu("asterisk_audio_video.sdp", rtcp_mux=True)
    assert "a=rtcp-mux" not in lines_of(body) and not media.rtcp_mux


def test_answer_takes_the_plain_rtp_stream_after_a_dtls_one():
    body, media = answer_pcmu("freeswitch_savpf_avp.sdp")
    assert m_lines(body) == ["m=audio 0 UDP/TLS/RTP/SAVPF 0 8 101", "m=audio 40000 RTP/AVP 0 101"]
    assert media.index == 1 and media.port == 26112 and media.rtcp_port == 26113


def test_answer_baresip_recvonly_with_sendonly():
    body, media = answer_pcmu("baresip_ipv6_ice.sdp")
    assert "a=sendonly" in lines_of(body)
    assert media.direction == "sendonly" and media.sends and not media.receives
    assert media.address == "2001:db8::77"


def test_answer_sipp_lf_offers():
    body, media = answer_pcmu("sipp_uac.sdp")
    assert m_lines(body) == ["m=audio 40000 RTP/AVP 0"]  # no telephone-event was offered
    assert media.telephone_event is None and media.address == "127.0.0.1" and media.port == 6000
    body, media = answer_pcmu("sipp_uac_pcap.sdp")
    assert media.codec == "PCMA" and media.telephone_event == 101


def test_answer_hold_offer_and_old_style_hold():
    body, media = answer_pcmu("asterisk_hold.sdp")
    assert "a=recvonly" in lines_of(body)
    assert media.direction == "recvonly" and not media.sends and media.receives
    body, media = answer_pcmu("old_hold_null_address.sdp")  # c=0.0.0.0: "don't send to me"
    assert media.direction == "recvonly" and not media.sends


def test_direction_matrix():
    expected = {
        ("sendrecv", "sendrecv"): "sendrecv",
        ("sendrecv", "sendonly"): "sendonly",
        ("sendrecv", "recvonly"): "recvonly",
        ("sendrecv", "inactive"): "inactive",
        ("sendonly", "sendrecv"): "recvonly",
        ("sendonly", "sendonly"): "inactive",
        ("sendonly", "recvonly"): "recvonly",
        ("sendonly", "inactive"): "inactive",
        ("recvonly", "sendrecv"): "sendonly",
        ("recvonly", "sendonly"): "sendonly",
        ("recvonly", "recvonly"): "inactive",
        ("recvonly", "inactive"): "inactive",
        ("inactive", "sendrecv"): "inactive",
        ("inactive", "sendonly"): "inactive",
        ("inactive", "recvonly"): "inactive",
        ("inactive", "inactive"): "inactive",
    }
    for (offered, wanted), result in expected.items():
        offer = build_offer("198.51.100.1", 5004, session_id=1, direction=offered)
        body, media = answer(offer, "192.0.2.1", 6000, session_id=2, direction=wanted)
        assert media.direction == result, (offered, wanted, media.direction)
        assert ("a=" + result) in lines_of(body)
        # and the offerer reads the mirror image of it
        back = accept_answer(body, offer)
        mirror = {"sendonly": "recvonly", "recvonly": "sendonly"}.get(result, result)
        assert back.direction == mirror, (offered, wanted, back.direction)


def test_session_level_direction_and_media_override():
    offer = (
        "v=0\r\no=- 1 1 IN IP4 198.51.100.1\r\ns=-\r\nc=IN IP4 198.51.100.1\r\nt=0 0\r\n"
        "a=sendonly\r\nm=audio 5004 RTP/AVP 0\r\nm=audio 5006 RTP/AVP 0\r\na=inactive\r\n"
    )
    sd = SessionDescription.parse(offer)
    assert sd.direction == "sendonly"
    assert [m.direction for m in sd.media] == ["sendonly", "inactive"]
    body, media = answer(offer, "192.0.2.1", 6000, session_id=2)
    assert media.direction == "recvonly" and media.index == 0
    assert m_lines(body) == ["m=audio 6000 RTP/AVP 0", "m=audio 0 RTP/AVP 0"]


def test_no_common_codec_is_488_with_a_reason():
    cases = (
        ("g729_only.sdp", "no common codec"),
        ("asterisk_srtp.sdp", "RTP/SAVP"),
        ("linphone_srtp.sdp", "SRTP"),
    )
    for name, why in cases:
        with raises(NoCommonCodec, match=why):
            answer_pcmu(name)
    video_only = (
        "v=0\r\no=- 1 1 IN IP4 198.51.100.1\r\ns=-\r\nc=IN IP4 198.51.100.1\r\nt=0 0\r\n"
        "m=video 5004 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\n"
    )
    with raises(NoCommonCodec, match="no audio"):
        answer(video_only, "192.0.2.1", 6000)
    disabled = video_only.replace("m=video 5004 RTP/AVP 96", "m=audio 0 RTP/AVP 0")
    with raises(NoCommonCodec, match="port 0"):
        answer(disabled, "192.0.2.1", 6000)
    # the 8000 Hz rule: PCMU declared at another rate is not PCMU for us
    odd = video_only.replace("m=video 5004 RTP/AVP 96", "m=audio 5004 RTP/AVP 96").replace(
        "VP8/90000", "PCMU/16000"
    )
    with raises(NoCommonCodec):
        answer(odd, "192.0.2.1", 6000)
    # and NoCommonCodec is still a ValueError for callers that only catch that
    assert issubclass(NoCommonCodec, ValueError)


def test_dynamic_payload_type_for_pcmu_is_echoed():
    offer = (
        "v=0\r\no=- 1 1 IN IP4 198.51.100.1\r\ns=-\r\nc=IN IP4 198.51.100.1\r\nt=0 0\r\n"
        "m=audio 5004 RTP/AVP 112 113\r\na=rtpmap:112 pcmu/8000\r\n"
        "a=rtpmap:113 telephone-event/8000\r\n"
    )
    body, media = answer(offer, "192.0.2.1", 6000, session_id=2)
    assert media.payload_type == 112 and media.codec == "PCMU" and media.telephone_event == 113
    assert m_lines(body) == ["m=audio 6000 RTP/AVP 112 113"]
    assert "a=rtpmap:112 PCMU/8000" in lines_of(body)


# ---- offers we build, and the answers to them --------------------------------------------


def test_build_offer_fields():
    body = build_offer("192.0.2.10", 4000, session_id=123456, version=7)
    assert lines_of(body) == [
        "v=0",
        "o=- 123456 7 IN IP4 192.0.2.10",
        "s=sipmote",
        "c=IN IP4 192.0.2.10",
        "t=0 0",
        "m=audio 4000 RTP/AVP 0 8 101",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:8 PCMA/8000",
        "a=rtpmap:101 telephone-event/8000",
        "a=fmtp:101 0-15",
        "a=ptime:20",
        "a=sendrecv",
    ]
    hold = build_offer(
        "2001:db8::10",
        4000,
        codecs=("PCMA",),
        session_id=1,
        direction="sendonly",
        telephone_event=None,
        ptime=30,
    )
    lines = lines_of(hold)
    assert "c=IN IP6 2001:db8::10" in lines and "m=audio 4000 RTP/AVP 8" in lines
    assert "a=sendonly" in lines and "a=ptime:30" in lines
    assert not [line for line in lines if "telephone-event" in line]


def test_build_offer_rejects_bad_arguments():
    with raises(ValueError, match="codec"):
        build_offer("192.0.2.1", 4000, codecs=("G729",))
    with raises(ValueError, match="at least one codec"):
        build_offer("192.0.2.1", 4000, codecs=())
    with raises(ValueError, match="port"):
        build_offer("192.0.2.1", 0)
    with raises(ValueError, match="direction"):
        build_offer("192.0.2.1", 4000, direction="hold")
    with raises(ValueError, match="address"):
        build_offer("192.0.2.1\r\na=evil", 4000)
    with raises(ValueError, match="telephone-event"):
        build_offer("192.0.2.1", 4000, telephone_event=8)
    with raises(ValueError, match="ptime"):
        build_offer("192.0.2.1", 4000, ptime=0)


def test_offer_answer_round_trip_between_two_of_ours():
    offer = build_offer("192.0.2.10", 4000, codecs=("PCMA", "PCMU"), session_id=5)
    body, theirs = answer(offer, "192.0.2.20", 5000, preference=("PCMU", "PCMA"), session_id=6)
    ours = accept_answer(body, offer)
    assert theirs.codec == ours.codec == "PCMU"
    assert (theirs.address, theirs.port) == ("192.0.2.10", 4000)
    assert (ours.address, ours.port, ours.rtcp_port) == ("192.0.2.20", 5000, 5001)
    assert ours.telephone_event == ours.recv_telephone_event == 101
    assert ours.remote_session_id == 6 and ours.remote_version == 1


def test_accept_answer_as_peers_send_them():
    offer = build_offer("192.0.2.10", 4000, session_id=5)
    asterisk = (
        "v=0\r\no=- 1712345700 1712345702 IN IP4 203.0.113.10\r\ns=Asterisk\r\n"
        "c=IN IP4 203.0.113.10\r\nt=0 0\r\nm=audio 18000 RTP/AVP 8 0 96\r\n"
        "a=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:96 telephone-event/8000\r\n"
        "a=fmtp:96 0-16\r\na=ptime:30\r\na=maxptime:150\r\na=sendrecv\r\n"
    )
    media = accept_answer(asterisk, offer)
    assert media.codec == "PCMA"  # the answerer's first, which we offered
    assert media.telephone_event == 96 and media.recv_telephone_event == 101
    assert media.ptime == 30
    assert media.remote_version == 1712345702
    rejected = asterisk.replace("m=audio 18000", "m=audio 0")
    with raises(NoCommonCodec, match="rejected"):
        accept_answer(rejected, offer)
    no_events = asterisk.replace(" 8 0 96", " 0")
    media = accept_answer(no_events, offer)
    assert media.codec == "PCMU" and media.telephone_event is None
    assert media.recv_telephone_event is None
    two = asterisk + "m=video 0 RTP/AVP 99\r\n"
    with raises(ValueError, match="2 m= lines, the offer had 1"):
        accept_answer(two, offer)
    other_codec = asterisk.replace(" 8 0 96", " 18").replace("a=rtpmap:8 PCMA", "a=rtpmap:18 G729")
    with raises(NoCommonCodec, match="none of the codecs"):
        accept_answer(other_codec, offer)


# ---- malformed input: ValueError, precise, and nothing else -------------------------------

GOOD = (
    "v=0\r\no=- 1 1 IN IP4 198.51.100.1\r\ns=-\r\nc=IN IP4 198.51.100.1\r\nt=0 0\r\n"
    "m=audio 5004 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\na=ptime:20\r\n"
)


def test_malformed_descriptions_name_the_problem():
    cases = (
        ("", "SDP is empty"),
        ("\r\n\r\n", "SDP is empty"),
        (GOOD.replace("v=0", "v=1"), "must start with v=0"),
        (GOOD.replace("v=0\r\n", ""), "must start with v=0"),
        (GOOD.replace("o=- 1 1 IN IP4 198.51.100.1\r\n", ""), "line 2 must be o="),
        (GOOD.replace("o=- 1 1 IN", "o=- 1 IN"), "line 2: o= needs 6 fields, has 5"),
        (GOOD.replace("o=- 1 1", "o=- x 1"), "o= session id is not a number"),
        (GOOD.replace("c=IN IP4 198.51.100.1", "c=IN IP4"), "line 4: c= needs"),
        (GOOD.replace("c=IN IP4 198.51.100.1", "c=IN IP4 198.51.100.300"), "out of range"),
        (GOOD.replace("c=IN IP4 198.51.100.1", "c=IN IP6 198.51.100.1"), "IP6 address"),
        (GOOD.replace("c=IN IP4 198.51.100.1", "c=ATM NSAP x"), "unsupported network"),
        (GOOD.replace("c=IN IP4 198.51.100.1\r\n", ""), "has no c="),
        (GOOD.replace("m=audio 5004", "m=audio 5x04"), "line 6: m= port is not a number"),
        (GOOD.replace("m=audio 5004", "m=audio 70000"), "m= port out of range"),
        (GOOD.replace("RTP/AVP 0 101", "RTP/AVP 0 128"), "payload type out of range"),
        (GOOD.replace("RTP/AVP 0 101", "RTP/AVP"), "m= has no formats"),
        (GOOD.replace("m=audio 5004 RTP/AVP 0 101", "m=audio"), "m= needs"),
        (GOOD.replace("telephone-event/8000", "telephone-event"), "not <name>/<rate>"),
        (GOOD.replace("telephone-event/8000", "telephone-event/fast"), "clock rate"),
        (GOOD.replace("a=rtpmap:101", "a=rtpmap:1x1"), "rtpmap payload type"),
        (GOOD.replace("a=ptime:20", "a=ptime:twenty"), "a=ptime is not a number"),
        (GOOD.replace("a=ptime:20", "a=rtcp:"), "a=rtcp needs a port"),
        (GOOD.replace("a=ptime:20", "a=rtcp:99999"), "a=rtcp port out of range"),
        (GOOD.replace("t=0 0", "x=0 0"), "line 5 has unknown type 'x'"),
        (GOOD.replace("t=0 0", "t:0 0"), "line 5 is not <type>=<value>"),
        (GOOD.replace("a=ptime:20", "a=:20"), "no attribute name"),
        (GOOD + "o=- 2 2 IN IP4 198.51.100.1\r\n", "o= must appear once"),
        (GOOD.encode() + b"s=\xff\xfe\r\n", "not valid UTF-8"),
        (GOOD + "a=x:" + "y" * 3000 + "\r\n", "over 2048 characters"),
        (GOOD + "a=x\r\n" * 600, "more than 512 lines"),
        (GOOD + ("m=audio 0 RTP/AVP 0\r\n" * 16), "more than 16 m= lines"),
        (GOOD.replace(" 0 101", " 0" * 70), "more than 64 formats"),
        (12345, "bytes or str"),
    )
    for text, message in cases:
        try:
            SessionDescription.parse(text)
        except ValueError as exc:
            assert message in str(exc), (str(exc), message)
        else:
            raise AssertionError("parsed: %r" % (text,))


def test_size_bound():
    big = GOOD + ("a=x:" + "y" * 1000 + "\r\n") * 17
    with raises(ValueError, match="larger than 16384 bytes"):
        SessionDescription.parse(big)
    with raises(ValueError, match="larger than 16384 bytes"):
        SessionDescription.parse(big.encode())


def test_mutated_offers_raise_only_value_error():
    # A deterministic fuzz: flip, drop, duplicate and truncate bytes of real offers. Every
    # outcome must be a parsed description or ValueError: never IndexError, KeyError, ...
    seeds = [load("asterisk_audio_video.sdp"), load("kamailio_rtpengine_ice.sdp"), GOOD.encode()]
    state = 12345
    parsed = failed = 0
    for round_ in range(300):
        data = bytearray(seeds[round_ % len(seeds)])
        for _ in range(1 + round_ % 4):
            state = (state * 1103515245 + 12345) & 0x7FFFFFFF
            pos = state % len(data)
            op = (state >> 16) % 5
            if op == 0:
                data[pos] = (state >> 8) & 0xFF
            elif op == 1:
                data = data[:pos] + data[pos + 1 :]
            elif op == 2:
                data = data[:pos] + data[pos : pos + 8] + data[pos:]
            elif op == 3:
                data = data[:pos]
            else:
                data[pos] = b" =:/\r\n0"[(state >> 9) % 7]
            if not data:
                data = bytearray(b"v")
        try:
            sd = SessionDescription.parse(bytes(data))
        except ValueError as exc:
            # parse() turns an internal slip into ValueError too; none may happen here
            assert "could not be parsed" not in str(exc), (bytes(data), str(exc))
            failed += 1
            continue
        parsed += 1
        try:
            answer(sd, "192.0.2.1", 6000, session_id=1)
        except ValueError:  # includes NoCommonCodec
            pass
    assert parsed > 20 and failed > 20, (parsed, failed)
