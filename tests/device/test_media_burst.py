# phone.media against bursts of RTP on the unix port's real UDP sockets: datagrams queued
# together (Wi-Fi delivers them so; a far end's clock catching up sends them back to back)
# each reach the jitter buffer whole, RFC 4733 digits among them are decoded with the audio
# around them kept, and peers sending 10 or 30 ms packets are played. First, the socket
# behaviour all this is about, against tests/lib/udp_stream_model.py.
import asyncio
import math
import struct

from udp_stream_model import stream_read

from phone import media, net
from phone.board import Board, load_profile
from unix_sim import board as sim_board
from voip import g711
from voip.sdp import Media, SessionDescription

RUNTIMES = ("micropython",)
MICROPYTHON_HEAPSIZE = "512K"

AUDIO_CFG = {"mic_gain_db": 0, "speaker_gain_db": 0, "echo_guard": False, "echo_guard_db": 18,
             "echo_guard_threshold": 300, "echo_guard_hangover_ms": 200, "jitter_ms": 60}
SSRC = 0x51A7E
TONE = bytearray(16)  # one period of a 500 Hz sine at 8 kHz, amplitude 12000, as PCMU


def _tone():
    pcm = bytearray(32)
    for i in range(16):
        v = int(12000 * math.sin(2 * math.pi * i / 16)) & 0xFFFF
        pcm[2 * i], pcm[2 * i + 1] = v & 0xFF, v >> 8
    g711.ulaw_encode(pcm, TONE)


_tone()


def peer_media(port, ptime=None):
    sdp = SessionDescription.parse(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        "m=audio %d RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
        "a=rtpmap:101 telephone-event/8000\r\n%s"
        % (port, "a=ptime:%d\r\n" % ptime if ptime else ""))
    m = Media(0, sdp.media[0], 0, "PCMU", "sendrecv", False)
    m.telephone_event = m.recv_telephone_event = 101
    return m


def audio(seq, ts, samples, fill=None):
    pkt = bytearray(12 + samples)
    struct.pack_into(">BBHII", pkt, 0, 0x80, 0, seq & 0xFFFF, ts & 0xFFFFFFFF, SSRC)
    for i in range(samples):
        pkt[12 + i] = TONE[(ts + i) & 15] if fill is None else (fill + i) & 0x7F
    return pkt


def event(seq, ts, key, duration, end=0, marker=0):
    pkt = bytearray(16)
    struct.pack_into(">BBHIIBBH", pkt, 0, 0x80, (0x80 if marker else 0) | 101, seq & 0xFFFF,
                     ts, SSRC, key, (0x80 if end else 0) | 10, duration)
    return pkt


class Far:
    def __init__(self, port, device_port):
        self.sock = net.udp_socket("127.0.0.1", port)
        self.sock.connect(net.sockaddr("127.0.0.1", device_port))
        self.rx = bytearray(2048)

    def send(self, datagrams):
        for d in datagrams:
            self.sock.write(d)

    def drain(self):
        while self.sock.readinto(self.rx):
            pass

    def close(self):
        self.sock.close()


def session(local_port):
    sim_board.configure(tone_hz=600)
    board = Board(load_profile("unix_sim", ("../../boards",)))
    return media.MediaSession(board, AUDIO_CFG, "127.0.0.1", local_port, poll_ms=4)


def played_frames(s, count):
    """The next `count` 10 ms frames the jitter buffer plays, as bytes."""
    out = bytearray(80)
    frames = []
    for _ in range(count):
        s.jitter.get(out)
        frames.append(bytes(out))
    return frames


def test_the_unix_port_readinto_glues_queued_datagrams_as_modelled():
    far = Far(41200, 41201)
    dev = net.udp_socket("127.0.0.1", 41201)
    buf = bytearray(512)
    sizes = (16, 172, 172, 100)
    datagrams = [bytes([n]) * n for n in sizes]
    try:
        far.send(datagrams)
        assert dev.readinto(buf) == 460  # all four, one after the other
        assert buf[:460] == stream_read(list(datagrams), 512)
        far.send(datagrams)
        queue = list(datagrams)
        for expected in (172, 172, 100):
            n = dev.readinto(buf, 172)
            assert n == expected and buf[:n] == stream_read(queue, 172)
            if expected == 172 and len(queue) == 2:
                assert buf[15] == 16 and buf[16] == 172  # the 16 bytes, then the next's start
        assert dev.readinto(buf, 172) is None and not queue
    finally:
        dev.close()
        far.close()


def test_a_burst_of_queued_audio_all_reaches_the_jitter_buffer():
    s = session(41210)
    far = Far(41211, 41210)
    s.start(peer_media(41211))
    try:
        burst = [audio(seq, seq * 160, 160, fill=seq) for seq in range(10)]
        far.send(burst)  # ten packets queued before the audio task reads any
        s._drain_rtp()
        st = s.stats()
        assert st["rx_packets"] == 10 and s.jitter.received == 10, st
        assert st["rx_malformed"] == 0 and st["rx_split"] == 0 and st["rx_cut"] == 0, st
        frames = played_frames(s, 20)
        assert b"".join(frames) == b"".join(bytes(p[12:]) for p in burst)
    finally:
        s.stop()
        far.close()


def test_digits_among_audio_in_a_burst_are_decoded_and_the_audio_around_them_kept():
    s = session(41220)
    far = Far(41221, 41220)
    s.start(peer_media(41221))
    keys = []
    s.on_digit = keys.append
    try:
        # audio goes on while the key is down (the peer sends both): events share its clock
        a = [audio(seq, 160 * seq, 160, fill=10 * seq) for seq in range(4)]
        burst = [a[0], a[1],
                 event(2, 320, 7, 160, marker=1), event(3, 320, 7, 320),
                 event(4, 320, 7, 400, end=1), event(4, 320, 7, 400, end=1),
                 event(4, 320, 7, 400, end=1),
                 a[2], a[3]]
        far.send(burst)
        s._drain_rtp()
        st = s.stats()
        assert keys == ["7"] and st["digits_received"] == 1
        assert s.dtmf_rx.repeats == 4 and s.dtmf_rx.ended
        assert st["rx_packets"] == 4 and st["rx_malformed"] == 0, st
        # five 16-byte events and a[2] shared a 172-byte read: a[2] kept its first 80 bytes
        # and the rest of its 20 ms was concealed; a[0], a[1], a[3] are intact
        assert st["rx_split"] == 5 and st["rx_cut"] == 1, st
        frames = played_frames(s, 8)
        assert b"".join(frames[:4]) == bytes(a[0][12:]) + bytes(a[1][12:])
        assert frames[4] == bytes(a[2][12:92])
        assert frames[5] == bytes(a[2][12:92])  # its last 80 bytes, repeated
        assert b"".join(frames[6:]) == bytes(a[3][12:])
    finally:
        s.stop()
        far.close()


async def _talk(s, far, seconds, ptime):
    """The far end sends the tone in `ptime` packets, due every ptime ms but sent from a 20 ms
    loop (so 10 ms packets go in pairs, as a bursty link delivers them)."""
    size = 8 * ptime
    seq = sent = due = 0
    for _ in range(seconds * 50):
        due += 20
        while due >= ptime:
            due -= ptime
            far.sock.write(audio(seq, seq * size, size))
            seq += 1
            sent += 1
        far.drain()
        await asyncio.sleep_ms(20)
    return sent


def _play(s, far, ptime, seconds=3):
    async def main():
        dma = asyncio.create_task(sim_board.dma_task())
        task = asyncio.create_task(s.run())
        sent = await _talk(s, far, seconds, ptime)
        level = s.stats()["far_level"]  # while the far end talks (it fades after)
        await asyncio.sleep_ms(100)
        st = s.stats()
        st["far_level"] = level
        s.running = False
        await task
        dma.cancel()
        return sent, st

    return asyncio.run(main())


def test_peers_sending_10_and_30_ms_packets_are_played():
    for ptime, port in ((10, 41230), (30, 41232)):
        s = session(port)
        far = Far(port + 1, port)
        s.start(peer_media(port + 1, ptime))
        try:
            sent, st = _play(s, far, ptime)
        finally:
            s.stop()
            far.close()
        assert st["rx_packets"] == sent and st["rx_ptime_ms"] == ptime, (ptime, st)
        assert st["rx_cut"] == 0 and st["lost"] == 0, (ptime, st)
        # the 500 Hz tone at its level (mean abs of a 12000 sine ~ 7640) reached the speaker
        assert 6500 < st["far_level"] < 8500, (ptime, st)


def test_a_peer_sending_longer_packets_than_it_announced_is_learned():
    s = session(41240)
    far = Far(41241, 41240)
    s.start(peer_media(41241))  # no a=ptime: 20 ms assumed
    try:
        sent, st = _play(s, far, 30)
    finally:
        s.stop()
        far.close()
    assert st["rx_packets"] == sent and st["rx_ptime_ms"] == 30, st
    assert s.split.resized == 1 and st["rx_cut"] == 1, st  # learned at the third packet
    assert 6500 < st["far_level"] < 8500, st
