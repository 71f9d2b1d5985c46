# phone.media: a call's audio: I2S <-> G.711 RTP, paced by the I2S DMA clock. MIT licence.
#
# MediaSession.run() is the call's audio task. Every few ms it:
#   - drains the RTP socket into the jitter buffer (RFC 4733 events to the DTMF receiver),
#     each read sized to the peer's packets and split into the packets it holds
#     (voip.rtp_split: MicroPython's readinto glues queued datagrams together);
#   - when the microphone's DMA has filled a frame (its irq handler set a flag): converts it
#     (phone.audio.Uplink), applies the echo guard, encodes G.711 and sends one RTP packet,
#     or a telephone-event packet instead while digits are being sent;
#   - when the speaker's DMA has taken a frame: takes the next one from the jitter buffer
#     (concealed if missing), decodes it and hands it to the speaker.
# So the microphone's clock paces what we send and the speaker's clock paces playout: no
# timer decides when audio moves. Everything on that path uses buffers allocated in
# __init__; the sockets are non-blocking (readinto/write return None rather than raising),
# flags are set by irq handlers bound once, and the loop's only await is sleep_ms, which
# allocates nothing. A steady-state frame allocates 0 bytes (tests/device/test_media.py).
#
# Half-duplex boards (the Atom Echo's microphone clock and speaker word clock share a pin)
# point their one bus at the speaker while the far end is audible (the echo guard's
# decision, with hangover) and at the microphone otherwise; the direction without hardware
# still ticks: silence is sent, far-end frames are measured but not played.
import time

from voip import dtmf, g711, jitter, rtp, rtp_split

from . import log, net
from .audio import CALL_SAMPLES, Downlink, EchoGuard, Uplink

TYPE_CHECKING = False  # mypy reads it as True: the I2S calls are checked against machine's
if TYPE_CHECKING:  # names for the `# type:` comments (ruff does not read those)
    from machine import I2S  # noqa: F401

    from .board import Board  # noqa: F401

_RX_BUFFER = 1024  # reads are at most rtp_split.MAX_READ: the rest is room to conceal a cut tail
_DRAIN_MAX = 16  # reads per poll, so a flood cannot starve the audio
_JITTER_FRAME = 80  # 10 ms: packets of 10, 20, 30... ms are each a whole number of frames
_JITTER_MIN_MS = 20  # one 20 ms packet: the least the jitter buffer can start playing on
_DMA_BUFFER_FRAMES = 256  # I2S frames per DMA buffer in MicroPython's ESP32 port (fixed)


def _gcd(a, b):
    while b:
        a, b = b, a % b
    return a


def speaker_early_ms(rate):
    """How much sooner than every 20 ms the speaker may ask for its next frame.

    A 20 ms write returns once its last byte has a free DMA buffer, and buffers free up whole
    (256 frames: 16 ms at 16 kHz), so 20 ms writes return 16, 16, 16 and 32 ms apart: up to
    256 - gcd(320, 256) = 192 frames (12 ms) early. The jitter buffer must hold that much
    more before it starts, or the early asks of each cycle find the next packet not there
    yet (tests/device/test_sim_dma.py has the pattern; the unix_sim board does the same)."""
    frames = rate * 20 // 1000
    early = _DMA_BUFFER_FRAMES - _gcd(frames, _DMA_BUFFER_FRAMES)
    return (early * 1000 + rate - 1) // rate


class AudioPort:
    """The board's I2S channels in non-blocking mode, with ready flags set by their irqs."""

    def __init__(self, board, uplink, downlink):
        self.board = board  # type: Board
        self.uplink = uplink
        self.downlink = downlink
        self.half = board.half_duplex
        self.mic = None  # type: I2S | None
        self.spk = None  # type: I2S | None
        self.mic_ready = False
        self.spk_ready = False
        self.on_mic = self._mic_done  # bound once: the handlers are called 50 times a second
        self.on_spk = self._spk_done

    def _mic_done(self, i2s):
        self.mic_ready = True

    def _spk_done(self, i2s):
        self.spk_ready = True

    def open_mic(self):
        self.mic = self.board.open_mic()
        self.mic.irq(self.on_mic)
        self.mic_ready = False
        self.mic.readinto(self.uplink.raw_in)

    def open_speaker(self):
        self.spk = self.board.open_speaker()
        self.spk.irq(self.on_spk)
        self.spk_ready = False
        self.downlink.silence()
        self.spk.write(self.downlink.out)  # prime: the handler fires when it is taken

    def close_mic(self):
        if self.mic is not None:
            self.mic.deinit()
            self.mic = None
        self.mic_ready = False

    def close_speaker(self):
        if self.spk is not None:
            self.spk.deinit()
            self.spk = None
        self.spk_ready = False

    def open(self):
        if self.half:
            self.open_mic()
        else:
            self.open_mic()
            self.open_speaker()

    def close(self):
        self.close_mic()
        self.close_speaker()

    @property
    def talking(self):
        return self.mic is not None


_fade_tables = {}  # law -> the jitter buffer's fade table (256 bytes), built at first use
_loud_tables = {}  # law -> its table of codes louder than -42 dBFS (what may not be trimmed)


def _fade_table(law):
    table = _fade_tables.get(law)
    if table is None:
        table = _fade_tables[law] = jitter.g711_fade_table(law)
    return table


def _loud_table(law):
    table = _loud_tables.get(law)
    if table is None:
        table = _loud_tables[law] = jitter.g711_loud_table(law)
    return table


class MediaSession:
    """Audio of calls: start(media) after SDP settles; run() as a task; stop() to end.

    A phone makes one and uses it for every call: its buffers (I2S conversion, jitter ring,
    RTP packets: about 7 KB) are allocated once, early, while the heap is whole. Allocated at
    each call they needed blocks of up to 2.5 KB from a heap the call's signalling had just
    split, and a tight heap failed there with tens of KB free (64-bit unix port)."""

    def __init__(self, board, audio_cfg, local_ip, local_port, poll_ms=4):
        self.board = board
        self.local_ip = local_ip
        self.local_port = local_port
        self.poll_ms = poll_ms
        profile = board.profile
        self.uplink = Uplink(profile["mic"], audio_cfg["mic_gain_db"])
        self.downlink = Downlink(profile["speaker"], audio_cfg["speaker_gain_db"])
        guard_on = audio_cfg["echo_guard"] or board.half_duplex
        self.guard = EchoGuard(guard_on, audio_cfg["echo_guard_db"],
                               audio_cfg["echo_guard_threshold"],
                               audio_cfg["echo_guard_hangover_ms"])
        self.port = AudioPort(board, self.uplink, self.downlink)
        # The jitter buffer's target adapts to the stream (voip.jitter): from what the speaker
        # needs (one packet, plus how early its DMA may ask: 20 + 12 ms at 16 kHz) up to
        # audio.jitter_ms.
        jitter_ms = audio_cfg["jitter_ms"]
        self.jitter_ms = jitter_ms
        min_ms = _JITTER_MIN_MS + speaker_early_ms(profile["speaker"]["rate"])
        max_ms = min(max(jitter_ms, min_ms + 10), 300)
        self.tx = bytearray(rtp.HEADER_SIZE + CALL_SAMPLES)
        self.tx_payload = memoryview(self.tx)[rtp.HEADER_SIZE :]
        self.tx_event = memoryview(self.tx)[: rtp.HEADER_SIZE + dtmf.EVENT_SIZE]
        self.rx = bytearray(_RX_BUFFER)
        self.split = rtp_split.RtpSplitter()
        self.play = bytearray(CALL_SAMPLES)
        # the speaker takes 20 ms, the jitter buffer gives 10 ms: two gets, into these halves
        self.play_first = memoryview(self.play)[:_JITTER_FRAME]
        self.play_second = memoryview(self.play)[_JITTER_FRAME:]
        self.header = rtp.RtpHeader()
        self.dtmf_rx = dtmf.DtmfReceiver()
        self.jitter = jitter.JitterBuffer(
            frame_bytes=_JITTER_FRAME,
            frame_ms=10,
            slots=32,
            min_ms=min_ms,
            max_ms=max_ms,
        )
        self.sock = None
        self.running = False
        self.calls = 0  # start()s so far: a finished call's task knows it is not current
        self.media = None
        self.on_digit = None  # called with each received key
        self._reset_counters()

    def _reset_counters(self):
        self.tx_packets = 0
        self.tx_errors = 0
        self.rx_errors = 0  # ICMP errors the socket reported (the far end's port closed)
        self.rx_packets = 0
        self.rx_malformed = 0
        self.rx_other_pt = 0
        self.ssrc_changes = 0
        self.frames = 0
        self.turns = 0  # half duplex: times the bus changed direction
        self.cpu_us = 0  # audio processing time of the frames since the last fold
        self.cpu_ms = 0
        self.cpu_max_us = 0
        self.last_rx_ms = time.ticks_ms()
        self.started_ms = self.last_rx_ms
        self._ssrc_hi = -1
        self._ssrc_lo = -1

    def start(self, media):
        """Begin sending to and receiving from the peer voip.sdp.Media describes."""
        self.media = media
        law = media.codec
        self.encode = g711.ulaw_encode if law == "PCMU" else g711.alaw_encode
        self.decode = g711.ulaw_decode if law == "PCMU" else g711.alaw_decode
        self.sender = rtp.RtpSender(media.payload_type)
        self.payload_type = media.payload_type
        self.event_pt = media.recv_telephone_event if media.recv_telephone_event else -1
        self.dtmf_tx = None
        if media.telephone_event is not None:
            self.dtmf_tx = dtmf.DtmfSender(media.telephone_event)
        self.jitter.set_codec(jitter.SILENCE_PCMU if law == "PCMU" else jitter.SILENCE_PCMA,
                              _fade_table(law), fade_frames=8,  # 80 ms of fade, as before
                              loud=_loud_table(law))
        self.split.set_stream(self.payload_type, self.event_pt, media.ptime)
        if self.calls:  # a session used before: nothing of the last call carries over
            self.dtmf_rx = dtmf.DtmfReceiver()
            self.uplink.reset()
            self.downlink.reset()
            self.guard.reset()
        self.calls += 1
        self._reset_counters()
        self._open_socket(media.address, media.port)
        self.port.open()
        self.running = True
        log.info("media", "%s to %s:%d, local RTP port %d, %s", law, media.address, media.port,
                 self.local_port, "half duplex" if self.port.half else "full duplex")

    def _open_socket(self, host, port):
        s = net.udp_socket(self.local_ip, self.local_port)
        # connected: the kernel drops datagrams from anyone else, and write() needs no address
        s.connect(net.sockaddr(host, port))
        self.sock = s

    def update(self, media):
        """A re-INVITE moved the stream (new address, codec or direction)."""
        if media.address != self.media.address or media.port != self.media.port:
            self.sock.connect(net.sockaddr(media.address, media.port))
        self.media = media

    def stop(self):
        self.running = False
        self.port.close()
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def send_digits(self, keys, duration_ms=100):
        if self.dtmf_tx is None:
            raise ValueError("the peer did not offer telephone-event: no RFC 4733 digits")
        self.dtmf_tx.send(keys, duration_ms)

    # --- the per-frame work ---------------------------------------------------------------

    def _drain_rtp(self):
        sock, rx, split = self.sock, self.rx, self.split
        for _ in range(_DRAIN_MAX):
            try:
                # readinto, because recv() would allocate a bytes object per packet; sized to
                # the peer's packets, because readinto reads on until it has that many bytes,
                # across datagrams. voip.rtp_split explains, and splits what still merges.
                n = sock.readinto(rx, split.read_size)
            except OSError:
                # An ICMP error (port unreachable: the far end closed its RTP port, e.g. it
                # hung up first) comes back as ECONNREFUSED on a connected socket's next
                # read. The signalling decides when the call ends, not this.
                self.rx_errors += 1
                return
            if not n:
                return
            count = split.split(rx, n)
            for i in range(count):
                self._receive(rx, split.starts[i], split.ends[i], i == count - 1)

    def _receive(self, rx, start, end, last):
        """The packet in rx[start:end], the last of its read or not."""
        header = self.header
        try:
            header.unpack_from(rx, end - start, start)
        except ValueError:
            self.rx_malformed += 1
            return
        pt = header.payload_type
        if pt == self.payload_type:
            if header.ssrc_hi != self._ssrc_hi or header.ssrc_lo != self._ssrc_lo:
                if self._ssrc_hi >= 0:
                    self.ssrc_changes += 1
                    self.jitter.reset()
                self._ssrc_hi, self._ssrc_lo = header.ssrc_hi, header.ssrc_lo
            length = header.payload_length
            missing = self.split.audio(header, start, last)
            if missing:  # the read cut it: repeat its last bytes where the rest would be
                tail = header.payload_offset + length
                if not length or tail + missing > len(rx):
                    return
                rtp_split.extend_tail(rx, tail, length, missing)
                length += missing
            now = time.ticks_ms()
            self.jitter.put(header.sequence, header.timestamp_lo, rx, now,
                            header.payload_offset, length)
            self.rx_packets += 1
            self.last_rx_ms = now
        elif pt == self.event_pt:
            self.last_rx_ms = time.ticks_ms()
            key = self.dtmf_rx.receive(header.marker, header.timestamp, rx,
                                       header.payload_offset, header.payload_length)
            if key is not None:
                log.info("media", "received digit %s", key)
                if self.on_digit is not None:
                    self.on_digit(key)
        else:
            self.rx_other_pt += 1

    def _send_frame(self):
        """One uplink frame (what uplink.out holds) as audio, or a digit packet instead."""
        if self.media is not None and not self.media.sends:
            self.sender.skip(CALL_SAMPLES)  # on hold: keep the clock, send nothing
            return
        if self.dtmf_tx is not None:
            n = self.dtmf_tx.tick(self.sender, self.tx)
            if n:
                self._write(self.tx_event)
                return
        self.guard.near_frame(self.uplink.out, CALL_SAMPLES)
        self.encode(self.uplink.out, self.tx_payload)
        self.sender.pack(self.tx, CALL_SAMPLES)
        self._write(self.tx)

    def _write(self, data):
        try:
            sent = self.sock.write(data)
        except OSError:  # an ICMP error reported on the write (see _drain_rtp)
            sent = None
        if sent is None:
            self.tx_errors += 1  # the stack's buffers were full: this frame is dropped
        else:
            self.tx_packets += 1

    def _next_playout(self):
        """Decode the next jitter-buffer frame into downlink.inp and run the downlink."""
        now = time.ticks_ms()
        self.jitter.get(self.play_first, now)
        self.jitter.get(self.play_second, now)
        self.decode(self.play, self.downlink.inp)
        self.guard.far_frame(self.downlink.process())

    def _account(self, t0):
        dt = time.ticks_diff(time.ticks_us(), t0)
        self.cpu_us += dt
        if dt > self.cpu_max_us:
            self.cpu_max_us = dt
        if self.cpu_us >= 1000000:  # fold into ms: keeps the sums small ints on a 32-bit port
            self.cpu_ms += self.cpu_us // 1000
            self.cpu_us %= 1000
        self.frames += 1

    def frame(self):
        """Do whatever the DMA flags ask for; called every poll_ms."""
        self._drain_rtp()
        port = self.port
        if port.mic_ready:
            t0 = time.ticks_us()
            port.mic_ready = False
            self.uplink.process()
            port.mic.readinto(self.uplink.raw_in)
            self._send_frame()
            if port.half:
                self._next_playout()  # measured, not played: decides when to listen
            self._account(t0)
        if port.spk_ready:
            t0 = time.ticks_us()
            port.spk_ready = False
            self._next_playout()
            port.spk.write(self.downlink.out)
            if port.half:
                self.uplink.silence()
                self._send_frame()
            self._account(t0)
        if port.half:
            self._turn()

    def _turn(self):
        port = self.port
        if port.talking and self.guard.active:
            port.close_mic()
            port.open_speaker()
            self.turns += 1
        elif not port.talking and not self.guard.active:
            port.close_speaker()
            port.open_mic()
            self.turns += 1

    async def run(self):
        """The call's audio task (the current call's: a task that outlived its call, because
        the next one started on this session within a poll, stops without touching it)."""
        import asyncio

        call = self.calls
        try:
            while self.running and self.calls == call:
                self.frame()
                await asyncio.sleep_ms(self.poll_ms)
        finally:
            if self.calls == call:
                self.stop()

    def silent_ms(self):
        """ms since the last RTP packet from the peer (or since the start)."""
        return time.ticks_diff(time.ticks_ms(), self.last_rx_ms)

    def stats(self):
        j = self.jitter
        frames = self.frames or 1
        return {
            "codec": self.media.codec if self.media else None,
            "remote": "%s:%d" % (self.media.address, self.media.port) if self.media else None,
            "tx_packets": self.tx_packets,
            "tx_errors": self.tx_errors,
            "rx_errors": self.rx_errors,
            "rx_packets": self.rx_packets,
            "rx_malformed": self.rx_malformed,
            "rx_other_pt": self.rx_other_pt,
            "rx_split": self.split.split_packets,  # packets a read had glued to another
            "rx_cut": self.split.cut_packets,  # packets a read cut short (tail concealed)
            "rx_ptime_ms": self.split.payload_bytes // 8,  # the peer's, as learned
            "jb_frame_ms": j.frame_ms,  # the unit of lost, late, concealed
            "lost": j.lost,
            "late": j.late,
            "concealed": j.concealed,
            "underruns": j.underruns,
            "jitter_ms": j.jitter_ms,
            "buffer_ms": j.depth_ms,
            "target_ms": j.target_ms,
            "late_underruns": j.late_underruns,
            "trimmed": j.trimmed,
            "digits_received": self.dtmf_rx.presses,
            "echo_guard_frames": self.guard.frames_attenuated,
            "mic_peak": self.uplink.peak,
            "far_level": self.downlink.level,
            "frames": self.frames,
            "turns": self.turns,
            "cpu_us_per_frame": (self.cpu_ms * 1000 + self.cpu_us) // frames,
            "cpu_max_us": self.cpu_max_us,
        }
