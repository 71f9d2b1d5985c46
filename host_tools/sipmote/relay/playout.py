"""Agent audio playout: bursty backend audio in, one RTP packet per 20 ms clock tick out.

Sans-I/O: ``push()`` stores agent audio as it arrives (a realtime backend sends it in bursts,
faster than real time), and the call's clock calls ``tick(t)`` once per 20 ms deadline; the
returned packet (or None) is what goes on the wire at that deadline. Nothing here reads a clock
or touches a socket, so tests drive it with invented times.

Invariants:
- every tick advances the RTP timestamp by one frame (160 samples), whether or not a packet is
  sent, so timestamps follow the media clock across silence, responses and barge-in; the
  sequence number advances by one per packet sent; the marker bit is set on the first packet
  of each talkspurt;
- a talkspurt starts once a whole frame is queued and ``prebuffer_ms`` of audio is queued, or
  the queued item is complete, or the oldest queued byte has waited ``prebuffer_ms``: audio
  never waits longer than that. ``start_time()`` says when that is, so the clock may send the
  first packet of a talkspurt at once (``start(t, deadline)``) instead of at its next deadline,
  and keep its 20 ms grid from there;
- ``starving`` says the talkspurt's next frame is late (its item is still arriving): the clock
  may hold that deadline for it and send it when it comes, with the timestamp it would have had,
  instead of ending the talkspurt (which would leave a one-frame hole in the timestamps);
- the queue holds at most ``max_queue_ms`` of audio (the excess is dropped and counted);
- ``sent_ms(item_id)`` is exactly the audio of that item that has gone out in packets (silence
  padding excluded): it is what the caller heard, and what barge-in truncates the item to.
"""

import collections
import os

from voip import rtp

from .g711_tables import SILENCE_BYTE

FRAME_MS = 20
SAMPLES_PER_MS = 8  # G.711 at 8 kHz: one byte per sample
# The default pre-buffer: one frame, i.e. none beyond the frame a packet needs. The backends
# deliver faster than real time once they have started (OpenAI's deltas, the echo backend's
# whole utterance), and a frame that is late mid-talkspurt is held for (``starving``), so a
# deeper pre-buffer only adds delay; tests/bench/bench_e2e.py measures the choice.
DEFAULT_PREBUFFER_MS = 20
MAX_PREBUFFER_MS = 40
_HISTORY = 64  # items remembered for sent_ms() and for ignoring late audio of dropped items


class _Chunk:
    __slots__ = ("item_id", "data", "pos", "t_recv", "t_ready")

    def __init__(self, item_id, data, t_recv, t_ready):
        self.item_id = item_id
        self.data = data
        self.pos = 0
        self.t_recv = t_recv
        self.t_ready = t_ready


class _Bounded(collections.OrderedDict):
    """An insertion-ordered dict that forgets its oldest entries beyond a size."""

    def __init__(self, size):
        super().__init__()
        self.size = size

    def __setitem__(self, key, value):
        super().__setitem__(key, value)
        if len(self) > self.size:
            self.popitem(last=False)


class AgentPlayout:
    def __init__(self, codec, payload_type, ssrc=None, seq=None, timestamp=None,
                 prebuffer_ms=DEFAULT_PREBUFFER_MS, max_queue_ms=60000, send_silence=False):
        if not 0 <= prebuffer_ms <= MAX_PREBUFFER_MS:
            raise ValueError("prebuffer_ms must be within 0..%d" % MAX_PREBUFFER_MS)
        self.codec = codec
        self.payload_type = payload_type
        rnd = os.urandom(10)
        self.ssrc = int.from_bytes(rnd[:4], "big") if ssrc is None else ssrc
        self.seq = int.from_bytes(rnd[4:6], "big") if seq is None else seq & 0xFFFF
        self.timestamp = int.from_bytes(rnd[6:], "big") if timestamp is None else timestamp
        self.frame_bytes = FRAME_MS * SAMPLES_PER_MS
        self.prebuffer_bytes = max(prebuffer_ms * SAMPLES_PER_MS, 1)
        self.prebuffer_s = prebuffer_ms / 1000.0
        self.max_queue_bytes = max_queue_ms * SAMPLES_PER_MS
        self.send_silence = send_silence
        self.silence = SILENCE_BYTE[codec]
        self._silence_frame = bytes([self.silence]) * self.frame_bytes
        self.packet = bytearray(rtp.HEADER_SIZE + self.frame_bytes)
        self.payload = memoryview(self.packet)[rtp.HEADER_SIZE :]
        self._queue = collections.deque()
        self._queued_per_item = {}
        self.queued_bytes = 0
        self._ended = _Bounded(_HISTORY)  # items whose audio is complete
        self._discarded = _Bounded(_HISTORY)  # items dropped by barge-in: ignore late audio
        self._sent = _Bounded(_HISTORY)  # item -> bytes sent
        self.talking = False
        self.sent_last = False  # the last deadline sent a packet (an early start must not follow)
        self.last_item = None  # the item the last packet carried (the one "playing")
        # the newest audio in the last packet: for the "delta received -> RTP out" latency
        self.frame_t_recv = 0.0
        self.frame_t_ready = 0.0
        # counters
        self.packets_sent = 0
        self.talkspurts = 0
        self.underruns = 0
        self.dropped_bytes = 0
        self.skipped = 0
        self.early_starts = 0  # talkspurts started between deadlines, as soon as audio was there
        self.held = 0  # deadlines the clock held for a late frame (counted by the clock)

    # -- input ---------------------------------------------------------------------------------

    def push(self, item_id, data, t_recv=0.0, t_ready=0.0):
        """Queue agent audio of item_id (G.711 bytes). Returns the number of bytes accepted."""
        if not data or item_id in self._discarded:
            return 0
        room = self.max_queue_bytes - self.queued_bytes
        if len(data) > room:
            self.dropped_bytes += len(data) - max(room, 0)
            if room <= 0:
                return 0
            data = data[:room]
        self._queue.append(_Chunk(item_id, bytes(data), t_recv, t_ready))
        self._queued_per_item[item_id] = self._queued_per_item.get(item_id, 0) + len(data)
        self.queued_bytes += len(data)
        return len(data)

    def end_item(self, item_id):
        """No more audio will come for item_id: its last partial frame may be padded and sent."""
        self._ended[item_id] = True

    def discard_item(self, item_id):
        """Ignore any audio of item_id from now on (its response was cancelled)."""
        self._discarded[item_id] = True

    # -- state ---------------------------------------------------------------------------------

    @property
    def playing(self):
        """True while agent audio is going out or waiting to."""
        return self.talking or self.queued_bytes > 0

    def sent_ms(self, item_id):
        return self._sent.get(item_id, 0) // SAMPLES_PER_MS

    def item_complete(self, item_id):
        return item_id in self._ended

    @property
    def starving(self):
        """Talking, but the next frame has not all arrived while its item is still coming: the
        frame is late. (A talkspurt whose audio is complete and sent is over, not starving.)"""
        if not self.talking or self._frame_ready():
            return False
        return bool(self.queued_bytes) or (
            self.last_item is not None and self.last_item not in self._ended)

    def start_time(self):
        """When a talkspurt may start (a time on the clock of push()'s t_ready; 0.0: now), or
        None: talking already, the last deadline sent a packet (the next one may not come
        sooner than a frame later), or not a whole frame queued and the item still arriving."""
        if self.talking or self.sent_last or not self._frame_ready():
            return None
        if self.queued_bytes >= self.prebuffer_bytes or self._all_queued_ended():
            return 0.0
        return self._queue[0].t_ready + self.prebuffer_s

    def interrupt(self):
        """Barge-in: drop all queued audio now. Returns [(item_id, sent_ms)] for every item cut
        short (queued audio dropped, or the playing item whose audio had not all arrived)."""
        cut = list(self._queued_per_item)
        if self.last_item is not None and self.last_item not in cut and (
            self.last_item not in self._ended
        ):
            cut.insert(0, self.last_item)
        for item_id in cut:
            self._discarded[item_id] = True
        self._queue.clear()
        self._queued_per_item.clear()
        self.queued_bytes = 0
        self.talking = False
        self.last_item = None
        return [(item_id, self.sent_ms(item_id)) for item_id in cut]

    # -- the clock -----------------------------------------------------------------------------

    def tick(self, t):
        """One 20 ms deadline at time t (seconds). Returns the RTP packet to send, or None."""
        marker = False
        send = False
        if not self.talking and self._frame_ready() and self._may_start(t):
            self.talking = True
            self.talkspurts += 1
            marker = True
        if self.talking:
            if self.queued_bytes >= self.frame_bytes or (
                self.queued_bytes and self._all_queued_ended()
            ):
                self._fill_payload()
                send = True
            else:
                if self.queued_bytes or (
                    self.last_item is not None and self.last_item not in self._ended
                ):
                    self.underruns += 1
                self.talking = False
        if not send and self.send_silence:
            self.payload[:] = self._silence_frame
            send = True
        self.sent_last = send
        packet = None
        if send:
            rtp.pack_header(
                self.packet, marker, self.payload_type, self.seq, self.timestamp, self.ssrc
            )
            self.seq = (self.seq + 1) & 0xFFFF
            self.packets_sent += 1
            packet = self.packet
        self.timestamp = (self.timestamp + self.frame_bytes) & 0xFFFFFFFF
        return packet

    def start(self, t, deadline):
        """Start a talkspurt at t, before the clock's next deadline (start_time() <= t): the
        first packet goes now rather than up to a frame later. Its timestamp is that of the
        deadline nearer t, the one before if that deadline sent nothing, so the timestamps stay
        on the 20 ms grid and within half a frame of the wall clock; the clock's next deadline
        is then t + one frame. Returns the packet, or None when no talkspurt may start now."""
        at = self.start_time()
        if at is None or at > t + 1e-6:
            return None
        if deadline - t > FRAME_MS / 2000.0:
            # the previous deadline's timestamp is unused (it sent nothing): t is nearer it
            self.timestamp = (self.timestamp - self.frame_bytes) & 0xFFFFFFFF
        self.early_starts += 1
        return self.tick(t)

    def skip(self):
        """A deadline the clock could not serve in time (the host stalled): the timestamp moves
        on with the media clock, nothing is sent, and the talkspurt restarts with a marker."""
        self.timestamp = (self.timestamp + self.frame_bytes) & 0xFFFFFFFF
        self.talking = False
        self.sent_last = False
        self.skipped += 1

    def _frame_ready(self):
        """A whole frame is queued, or what is queued is the end of complete items."""
        return self.queued_bytes >= self.frame_bytes or (
            self.queued_bytes > 0 and self._all_queued_ended())

    def _may_start(self, t):
        if self.queued_bytes >= self.prebuffer_bytes:
            return True
        if self._all_queued_ended():
            return True
        return t - self._queue[0].t_ready >= self.prebuffer_s - 1e-6

    def _all_queued_ended(self):
        return all(item_id in self._ended for item_id in self._queued_per_item)

    def _fill_payload(self):
        need = self.frame_bytes
        pos = 0
        queue = self._queue
        while need and queue:
            chunk = queue[0]
            take = min(need, len(chunk.data) - chunk.pos)
            self.payload[pos : pos + take] = chunk.data[chunk.pos : chunk.pos + take]
            chunk.pos += take
            pos += take
            need -= take
            item_id = chunk.item_id
            self._sent[item_id] = self._sent.get(item_id, 0) + take
            left = self._queued_per_item[item_id] - take
            if left:
                self._queued_per_item[item_id] = left
            else:
                del self._queued_per_item[item_id]
            self.last_item = item_id
            self.frame_t_recv = chunk.t_recv
            self.frame_t_ready = chunk.t_ready
            if chunk.pos == len(chunk.data):
                queue.popleft()
        self.queued_bytes -= pos
        if need:  # the end of a complete item: pad the frame with silence
            self.payload[pos:] = self._silence_frame[:need]
