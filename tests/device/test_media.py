# phone.media.MediaSession on the unix_sim boards, against a far end made of a loopback UDP
# socket in the same asyncio loop: a steady-state call allocates nothing per frame (heap
# counted with the collector off), nor do bursts of RTP with digit packets among the audio
# (reads split into packets, cut tails concealed), audio crosses both ways, and a
# half-duplex board turns its one bus toward the speaker while the far end talks and back
# afterwards.
import asyncio
import gc
import math
import struct

from phone import audio, media, net
from phone.board import Board, load_profile
from unix_sim import board as sim_board
from voip import g711
from voip.sdp import Media, SessionDescription

RUNTIMES = ("micropython",)
MICROPYTHON_HEAPSIZE = "512K"

AUDIO_CFG = {"mic_gain_db": 0, "speaker_gain_db": 0, "echo_guard": False, "echo_guard_db": 18,
             "echo_guard_threshold": 300, "echo_guard_hangover_ms": 200, "jitter_ms": 60}


def peer_media(port):
    sdp = SessionDescription.parse(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        "m=audio %d RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
        "a=rtpmap:101 telephone-event/8000\r\n" % port)
    m = Media(0, sdp.media[0], 0, "PCMU", "sendrecv", False)
    m.telephone_event = m.recv_telephone_event = 101
    return m


class FarEnd:
    """Sends 20 ms PCMU packets of a tone (or silence) and counts what it gets back."""

    def __init__(self, port, device_port):
        self.sock = net.udp_socket("127.0.0.1", port)
        self.sock.connect(net.sockaddr("127.0.0.1", device_port))
        self.pkt = bytearray(172)
        self.evt = bytearray(16)  # an RFC 4733 packet: key 9, held since event_ts
        self.event_ts = 0
        self.rx = bytearray(1024)
        self.rx_payload = memoryview(self.rx)[12:172]  # made once: a slice per packet allocates
        self.received = 0
        self.level = 0  # mean abs of the last received frame
        self.pcm = bytearray(320)
        self.seq = 0
        self.tones = []  # 160-byte PCMU frames to cycle through
        for f in range(4):
            pcm = bytearray(320)
            for i in range(160):
                v = int(12000 * math.sin(2 * math.pi * 500 * (f * 160 + i) / 8000)) & 0xFFFF
                pcm[2 * i], pcm[2 * i + 1] = v & 0xFF, v >> 8
            out = bytearray(160)
            g711.ulaw_encode(pcm, out)
            self.tones.append(out)
        self.silence = bytes([0xFF] * 160)
        self.talking = True

    def send(self):
        struct.pack_into(">BBHII", self.pkt, 0, 0x80, 0, self.seq & 0xFFFF,
                         (self.seq * 160) & 0xFFFFFFFF, 0x1234)
        src = self.tones[self.seq & 3] if self.talking else self.silence
        for i in range(160):
            self.pkt[12 + i] = src[i]
        self.seq += 1
        self.sock.write(self.pkt)

    def send_event(self, duration):
        struct.pack_into(">BBHIIBBH", self.evt, 0, 0x80, 101, self.seq & 0xFFFF,
                         self.event_ts, 0x1234, 9, 10, duration)
        self.seq += 1
        self.sock.write(self.evt)

    async def run_bursts(self, frames):
        """Audio two packets at a time every 40 ms, a digit's update packet between them
        every other time: the second packet's read then starts with 16 bytes of event."""
        for i in range(frames):
            if i & 1:
                self.send()
                if i & 2:
                    self.send_event(160 * i)
                self.send()
            self.drain()
            await asyncio.sleep_ms(20)

    def drain(self):
        while True:
            n = self.sock.readinto(self.rx)
            if not n:
                return
            self.received += 1
            g711.ulaw_decode(self.rx_payload, self.pcm)
            self.level = audio.mean_abs16(self.pcm, 160)

    async def run(self, frames):
        for _ in range(frames):
            self.send()
            self.drain()
            await asyncio.sleep_ms(20)


def session(board_name, tone_hz=600):
    sim_board.configure(tone_hz=tone_hz)
    board = Board(load_profile(board_name, ("../../boards",)))
    s = media.MediaSession(board, AUDIO_CFG, "127.0.0.1", 41000, poll_ms=4)
    return s


def test_steady_state_call_allocates_nothing_per_frame():
    s = session("unix_sim")
    far = FarEnd(41010, 41000)
    s.start(peer_media(41010))

    async def main():
        dma = asyncio.create_task(sim_board.dma_task())
        task = asyncio.create_task(s.run())
        warm = asyncio.create_task(far.run(25))  # 0.5 s: buffers fill, paths warm up
        await warm
        frames_before = s.frames
        call = far.run(150)  # 3 s of call (the coroutine object is made before counting)
        gc.collect()
        gc.disable()  # nothing is freed behind our back: the difference is what was allocated
        before = gc.mem_alloc()
        await call
        after = gc.mem_alloc()
        gc.enable()
        frames = s.frames - frames_before
        st = s.stats()
        # Bursts, with a key held down at the far end: reported once, before counting (the
        # log line allocates); its update packets glued to the audio are counted.
        far.event_ts = (far.seq * 160) & 0xFFFFFFFF
        far.send_event(160)
        await far.run(2)
        packets, splits, cuts = s.rx_packets, s.split.split_packets, s.split.cut_packets
        bursts = far.run_bursts(100)
        gc.collect()
        gc.disable()
        burst_before = gc.mem_alloc()
        await bursts
        burst_allocated = gc.mem_alloc() - burst_before
        gc.enable()
        s.running = False
        await task
        dma.cancel()
        return after - before, frames, st, burst_allocated, (
            s.rx_packets - packets, s.split.split_packets - splits, s.split.cut_packets - cuts)

    allocated, frames, st, burst_allocated, burst = asyncio.run(main())
    assert frames >= 250, frames  # mic and speaker frames over 3 s
    assert allocated == 0, "%d bytes over %d frames" % (allocated, frames)
    assert burst_allocated == 0, "%d bytes in bursts" % burst_allocated
    # 100 audio packets, 25 of them with 16 bytes of event ahead of them in their read
    assert burst == (100, 25, 25), burst
    assert s.dtmf_rx.presses == 1 and s.dtmf_rx.repeats == 25
    assert st["rx_packets"] >= 160 and st["tx_packets"] >= 160
    assert st["lost"] == 0 and st["rx_malformed"] == 0
    # the far end heard the mic's 600 Hz tone at its level (-12 dBFS, mean abs ~ 5100)
    assert 3500 < far.level < 6500, far.level
    # and the device played the far end's 500 Hz (mean abs of a 12000 sine ~ 7640)
    assert 6500 < st["far_level"] < 8500, st["far_level"]


def test_half_duplex_board_turns_its_bus_to_the_talker():
    s = session("unix_sim_pdm", tone_hz=1000)
    far = FarEnd(41012, 41002)
    s.local_port = 41002
    s.start(peer_media(41012))
    turns = []

    async def main():
        dma = asyncio.create_task(sim_board.dma_task())
        task = asyncio.create_task(s.run())
        far.talking = False
        await far.run(15)
        turns.append(s.port.talking)  # far end silent: the mic has the bus
        mic_level_silent = far.level
        far.talking = True
        await far.run(25)
        turns.append(s.port.talking)  # far end talking: the speaker has it
        far.talking = False
        await far.run(30)  # hangover, then back to the mic
        turns.append(s.port.talking)
        s.running = False
        await task
        dma.cancel()
        return mic_level_silent

    mic_level = asyncio.run(main())
    assert turns == [True, False, True], turns
    assert mic_level > 2000  # the PDM mic's 1 kHz tone went out while it had the bus
    assert s.guard.frames_attenuated > 0
    assert s.tx_packets >= 60  # silence kept flowing while the speaker had the bus


def test_one_session_serves_call_after_call_without_allocating_its_buffers_again():
    # The phone makes one MediaSession at boot (phone.app._call_resources): each call reuses
    # its buffers, so a call needs no large block from a heap its signalling has split. The
    # first call's task, still asleep when the second call starts, must leave it alone.
    s = session("unix_sim")
    ring, raw = s.jitter._data, s.uplink.raw
    results = []

    async def one_call(far_port):
        far = FarEnd(far_port, 41000)
        s.start(peer_media(far_port))
        task = asyncio.create_task(s.run())
        await far.run(20)
        results.append((s.stats(), far.received, far.level))
        s.stop()
        far.sock.close()
        return task

    async def main():
        dma = asyncio.create_task(sim_board.dma_task())
        first = await one_call(41014)
        s.start(peer_media(41016))  # the next call, before the first task has woken
        await asyncio.sleep_ms(20)
        assert s.running and s.sock is not None  # the old task stopped without stopping it
        await first
        s.stop()
        second = await one_call(41018)
        await second
        dma.cancel()

    asyncio.run(main())
    assert s.calls == 3
    assert s.jitter._data is ring and s.uplink.raw is raw  # the same buffers throughout
    for st, received, level in results:
        assert st["tx_packets"] >= 15 and st["rx_packets"] >= 15, st
        assert st["lost"] == 0 and received >= 15 and 3500 < level < 6500, (st, level)
    # the second call's counters start again (not the first call's plus its own)
    assert results[1][0]["tx_packets"] < results[0][0]["tx_packets"] + 10
