"""voip.rtp, voip.dtmf and voip.jitter against independent implementations on 127.0.0.1.

- SIPp places a call and replays its RFC 4733 captures (four digits) and 1.5 s of PCMA to
  the RTP port of our answer; our DtmfReceiver must report exactly those digits from the live
  stream, and our JitterBuffer must play every PCMA frame, in order, from the real arrival
  times.
- tshark decodes the packets our RtpSender and DtmfSender build: every RTP header field and
  every telephone-event field must be what we meant.
CPython only: the sockets and clocks are the test's; the protocol code is the device's.
"""

import os
import shutil
import subprocess

import pytest
from pcap import write_udp
from sipp_caller import call_from_sipp, trimmed_pcap

from voip.dtmf import DtmfReceiver, DtmfSender
from voip.jitter import AUDIO, SILENCE_PCMA, JitterBuffer
from voip.rtp import RtpHeader, RtpSender

pytestmark = pytest.mark.interop

DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "rtp")
PCMA_PACKETS = 50  # of the capture's 236 (30 ms each)
# In the order SIPp recorded them (one session, rising timestamps), then 0, recorded with a
# timestamp 9.4 s back: a clock jump the receiver must take as a new press.
DIGITS = (
    ("1", "dtmf_2833_1.pcap"),
    ("*", "dtmf_2833_star.pcap"),
    ("#", "dtmf_2833_pound.pcap"),
    ("0", "dtmf_2833_0.pcap"),
)

_SDP_OFFER = """
      v=0
      o=sipp 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 8 101
      a=rtpmap:8 PCMA/8000
      a=rtpmap:101 telephone-event/8000
      a=fmtp:101 0-15
"""


def scenario(plays):
    """A SIPp UAC: INVITE, ACK, then each (pcap, pause ms) replayed, then BYE."""
    head = """      %s [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:sipp@[local_ip]>;tag=[pid]SIPpTag03[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>%s
      Call-ID: [call_id]
      CSeq: %s
      Max-Forwards: 70
"""
    invite = head.replace("[next_url]", "sip:[service]@[remote_ip]:[remote_port]") % (
        "INVITE",
        "",
        "1 INVITE",
    )
    parts = [
        '<?xml version="1.0" encoding="ISO-8859-1" ?>',
        '<scenario name="UAC replaying RTP captures">',
        '  <send retrans="500"><![CDATA[',
        invite + "      Contact: <sip:sipp@[local_ip]:[local_port]>",
        "      Content-Type: application/sdp",
        "      Content-Length: [len]",
        _SDP_OFFER + "    ]]></send>",
        '  <recv response="200" rtd="true" rrs="true"/>',
        "  <send><![CDATA[",
        head % ("ACK", "[peer_tag_param]", "1 ACK") + "      Content-Length: 0",
        "    ]]></send>",
    ]
    for pcap, pause in plays:
        parts.append('  <nop><action><exec play_pcap_audio="%s"/></action></nop>' % pcap)
        parts.append('  <pause milliseconds="%d"/>' % pause)
    parts += [
        '  <send retrans="500"><![CDATA[',
        head % ("BYE", "[peer_tag_param]", "2 BYE") + "      Content-Length: 0",
        "    ]]></send>",
        '  <recv response="200"/>',
        "</scenario>",
    ]
    return "\n".join(parts) + "\n"


def test_sipp_replayed_digits_and_speech_through_our_receiver(tmp_path):
    pcma = str(tmp_path / "pcma.pcap")
    trimmed_pcap(os.path.join(DATA, "g711a.pcap"), pcma, PCMA_PACKETS)
    plays = [(pcma, 1700)] + [(os.path.join(DATA, name), 400) for _, name in DIGITS]

    def answer(invite, rtp_port):
        return (
            b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            b"m=audio %d RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\n"
            b"a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n"
        ) % rtp_port

    received = call_from_sipp(
        tmp_path, scenario(plays), ["-p", "0", "-mi", "127.0.0.1", "-mp", "0", "-s", "agent"],
        answer,
    )

    header = RtpHeader()
    receiver = DtmfReceiver()
    keys = []
    speech = []
    for arrival, data, _ in received:
        start = header.unpack_from(data)
        if header.payload_type == 101:
            key = receiver.receive(header.marker, header.timestamp, data, start, 4)
            if key is not None:
                keys.append(key)
        else:
            assert header.payload_type == 8
            speech.append((arrival, header.sequence, header.timestamp_lo, data, start))
    assert keys == [key for key, _ in DIGITS]
    assert receiver.repeats == 9 * len(DIGITS)
    assert len(speech) == PCMA_PACKETS

    # Play the speech back from its real arrival times on a 10 ms playout clock.
    jb = JitterBuffer(frame_bytes=80, frame_ms=10, slots=16, silence=SILENCE_PCMA)
    out = bytearray(80)
    played = []
    first = speech[0][0]
    p = 0
    for tick in range(PCMA_PACKETS * 3 + 30):
        now = first + 10 * tick
        while p < len(speech) and speech[p][0] <= now:
            arrival, seq, ts, data, start = speech[p]
            jb.put(seq, ts, data, arrival, start, 240)
            p += 1
        if jb.get(out) == AUDIO:
            played.append(bytes(out))
    expected = b"".join(data[start : start + 240] for _, _, _, data, start in speech)
    assert b"".join(played) == expected
    assert (jb.lost, jb.late, jb.duplicates) == (0, 0, 0)


def test_tshark_decodes_the_packets_we_send(tmp_path):
    tshark = shutil.which("tshark")
    if tshark is None:
        pytest.skip("tshark not installed: apt-get install tshark")
    rtp = RtpSender(0, ssrc=0xCAFEF00D, sequence=65533, timestamp=0xFFFFFE00)
    dtmf = DtmfSender(volume=12)
    dtmf.send("7#D")
    dtmf.send("flash", duration_ms=60)
    buf = bytearray(172)
    packets = []
    sent = []  # what we meant: (seq, ts, marker, pt, event fields or None)
    for tick in range(50):
        seq, ts_before = rtp.sequence, rtp.timestamp
        n = dtmf.tick(rtp, buf)
        if n:
            header = RtpHeader()
            header.unpack_from(buf, n)
            event = (buf[12], buf[13] >> 7, buf[13] & 0x3F, buf[14] << 8 | buf[15])
            sent.append((seq, header.timestamp, header.marker, 101, event))
        else:
            n = rtp.pack(buf, 160) + 160
            buf[12:172] = bytes([0xFF]) * 160
            sent.append((seq, ts_before, 1 if tick == 7 else 0, 0, None))
        packets.append((tick * 20, 40000, 40002, bytes(buf[:n])))
    path = str(tmp_path / "ours.pcap")
    write_udp(path, packets)
    fields = ["rtp.seq", "rtp.timestamp", "rtp.marker", "rtp.p_type", "rtp.ssrc", "rtp.version"]
    fields += ["rtpevent.event_id", "rtpevent.end_of_event", "rtpevent.volume"]
    fields += ["rtpevent.duration"]
    cmd = [tshark, "-r", path, "-d", "udp.port==40002,rtp", "-T", "fields", "-E", "separator=,"]
    for field in fields:
        cmd += ["-e", field]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=True)
    rows = [line.split(",") for line in result.stdout.strip().splitlines()]
    assert len(rows) == len(sent) == 50
    events = []
    for row, (seq, ts, marker, pt, event) in zip(rows, sent, strict=True):
        assert int(row[0]) == seq and int(row[1]) == ts, row
        assert (int(row[2]), int(row[3]), int(row[4], 16), int(row[5])) == (
            marker,
            pt,
            0xCAFEF00D,
            2,
        ), row
        if event is None:
            assert row[6:] == ["", "", "", ""], row
        else:
            assert tuple(int(x) for x in row[6:]) == event, row
            events.append(event)
    # 7, #, D at 100 ms (five updates, end sent three times: 7 packets), flash at 60 ms.
    assert [e[0] for e in events if e[1] == 0 and e[3] == 160] == [7, 11, 15, 16]
    assert [e for e in events if e[1]] == [(7, 1, 12, 800)] * 3 + [(11, 1, 12, 800)] * 3 + [
        (15, 1, 12, 800)
    ] * 3 + [(16, 1, 12, 480)] * 3
