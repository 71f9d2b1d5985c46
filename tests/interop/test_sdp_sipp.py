"""SDP offer/answer and RTP receiver statistics against a real SIPp on 127.0.0.1.

SIPp places a call with its own SDP offer (PCMA + telephone-event, the stock `uac_pcap` scenario),
we parse it with voip.sdp and answer with voip.sdp.answer, and SIPp then streams RTP captured in
pcap files to the address and port of our answer, which we account with voip.rtcp.ReceiverStats.
CPython only: the sockets and the clock are the test's; the protocol code is the device's.
"""

import os
import struct
import time

import pytest
from peers_harness import free_udp_port
from sipp_caller import call_from_sipp, trimmed_pcap

from voip.rtcp import ReceiverStats, build_report, parse
from voip.sdp import SessionDescription, answer

pytestmark = pytest.mark.interop

DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "rtp")
PCMA_PACKETS = 50  # of the capture's 236 (30 ms each): 1.5 s of speech keeps the test short

# SIPp's built-in uac_pcap scenario (`sipp -sd uac_pcap`), its pauses shortened to our clips.
SCENARIO = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="UAC with media">
  <send retrans="500"><![CDATA[

      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag09[call_number]
      To: [service] <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: sip:sipp@[local_ip]:[local_port]
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[local_ip_type] [local_ip]
      t=0 0
      m=audio [auto_media_port] RTP/AVP 8 101
      a=rtpmap:8 PCMA/8000
      a=rtpmap:101 telephone-event/8000
      a=fmtp:101 0-11,16

    ]]></send>
  <recv response="100" optional="true"></recv>
  <recv response="180" optional="true"></recv>
  <recv response="200" rtd="true"></recv>
  <send><![CDATA[

      ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag09[call_number]
      To: [service] <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Contact: sip:sipp@[local_ip]:[local_port]
      Max-Forwards: 70
      Content-Length: 0

    ]]></send>
  <nop><action><exec play_pcap_audio="PCMA_PCAP"/></action></nop>
  <pause milliseconds="1800"/>
  <nop><action><exec play_pcap_audio="DTMF_PCAP"/></action></nop>
  <pause milliseconds="600"/>
  <send retrans="500"><![CDATA[

      BYE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag09[call_number]
      To: [service] <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 2 BYE
      Contact: sip:sipp@[local_ip]:[local_port]
      Max-Forwards: 70
      Content-Length: 0

    ]]></send>
  <recv response="200"></recv>
</scenario>
"""


def test_sipp_offer_answer_and_rtp_statistics(tmp_path):
    pcma = str(tmp_path / "pcma.pcap")
    trimmed_pcap(os.path.join(DATA, "g711a.pcap"), pcma, PCMA_PACKETS)
    offers = []

    def answer_offer(invite, rtp_port):
        offer = SessionDescription.parse(invite.split(b"\r\n\r\n", 1)[1])
        assert offer.origin_username == "user1" and offer.session_version == 2353687637
        audio = offer.media[0]
        assert audio.rtpmap[101] == ("telephone-event", 8000, 1) and audio.fmtp[101] == "0-11,16"
        body, media = answer(offer, "127.0.0.1", rtp_port, session_id=4242)
        assert media.codec == "PCMA" and media.payload_type == 8 and media.telephone_event == 101
        assert media.address == "127.0.0.1" and media.port == audio.port
        offers.append(media)
        return body

    scenario = SCENARIO.replace("PCMA_PCAP", pcma)
    scenario = scenario.replace("DTMF_PCAP", os.path.join(DATA, "dtmf_2833_1.pcap"))
    received = call_from_sipp(
        tmp_path, scenario,
        ["-p", str(free_udp_port()), "-mp", str(free_udp_port(even=True))], answer_offer,
    )
    (media,) = offers
    stats = ReceiverStats()
    audio_packets = events = 0
    sources = set()
    for arrival_ms, data, source in received:
        payload_type = data[1] & 0x7F
        seq, ts = struct.unpack_from(">HI", data, 2)
        sources.add(source[0])
        if payload_type == media.payload_type:
            audio_packets += 1
            stats.receive(seq, ts, arrival_ms)
        elif payload_type == media.telephone_event:
            events += 1

    # SIPp streamed the clip to the address and port our answer named, in order and complete
    assert sources == {"127.0.0.1"}
    assert audio_packets == PCMA_PACKETS
    assert events == 10  # one RFC 4733 event: 7 updates and the end packet three times
    assert stats.received == PCMA_PACKETS - 1  # the first packet went to probation
    assert stats.lost() == 0 and stats.expected() == PCMA_PACKETS - 1
    # paced from the capture's timestamps over loopback: jitter of a few ms at most
    assert stats.jitter_ms() < 10, stats.jitter_ms()
    block = stats.report_block(int(time.monotonic() * 1000))
    rr, sdes = parse(build_report(0x5EED, b"sipmote-test", block))
    assert rr.reports[0].highest_sequence == stats.extended_max()
    assert rr.reports[0].packets_lost == 0 and rr.reports[0].fraction_lost == 0
