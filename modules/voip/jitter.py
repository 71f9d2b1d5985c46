# voip.jitter: a fixed-size adaptive jitter buffer for G.711 audio frames, with loss
# concealment. No clock, no I/O: the caller passes arrival times in ms to put() and calls get()
# once per frame time from its playout clock. MIT licence.
#
# Shape (after aiortc's jitterbuffer.py): a power-of-two ring of `slots` frames of `frame_bytes`
# codes each, indexed from the frame about to be played (the head). A packet's place is its
# RTP timestamp's distance from the head's, in frames, so any packet time that is a multiple
# of the frame works (20 ms packets in 20 ms frames; 30 ms packets in 10 ms frames), and a
# sender's silence (a timestamp jump) needs no special case.
#
# Only the low 16 bits of timestamps are used (differences within +-4 s at 8 kHz): callers on
# a 32-bit port can pass RtpHeader.timestamp_lo and never build a 32-bit int.
#
# What get() does each tick, while playing:
#   1. the head frame is there: play it (and remember it for concealment);
#   2. the ring is empty: an underrun. Conceal, and buffer again: the next packet re-anchors
#      the head, so the playout delay grows by whatever the gap was (a delay spike or the
#      sender pausing both end up here);
#   3. the head frame is missing but later frames are there, and the ring holds fewer frames
#      than the target: conceal without moving, which deepens the buffer by one frame and
#      gives a late packet one more tick to arrive;
#   4. otherwise the head frame is lost: conceal it and move on.
# Concealment repeats the last frame once, then (given a fade table) repeats it fading,
# then plays silence.
#
# The target depth adapts between min_ms and max_ms, starting at min_ms:
#   - it follows the RFC 3550 §6.4.1 / A.8 interarrival jitter J (J += (|D| - J)/16, kept
#     times 16 in integers so nothing allocates): one frame + 3 J, in ms; it rises at once;
#   - an underrun that a late packet caused (the packet that ends it was due during the gap,
#     by two frames or more: not a sender's pause) raises it by one frame: J, a smoothed
#     mean, underrates rare spikes, and a buffer that ran dry once will again;
#   - it comes down slowly: one frame per _SHRINK_TICKS ticks (2 s of 10 ms frames) while
#     above what J asks for, so a spike does not leave the delay high, nor does a quiet
#     moment right after one invite the next underrun.
# It takes effect when playout (re)starts (once target ms are held, or, given get()'s clock,
# once the first packet has waited target minus its own length: the margin the next packet
# has to be late by), by waiting on missing frames (case 3), and by dropping one frame when
# the ring has held more than target + 1 frames (rounded up) for half a second.
# Given a `loud` table (g711_loud_table), only a quiet frame (or a missing one) is dropped:
# latency left by a spike is shed in a pause, never by cutting 10 ms out of speech.
from . import framebuf
from .jitter_tables import fade_table, g711_fade_table, g711_loud_table  # noqa: F401

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


# get() statuses: what the caller's frame now holds.
AUDIO = const(0)  # a received frame
CONCEALED = const(1)  # a repeated or faded copy of the last frame
SILENCE = const(2)  # silence: nothing received yet, or concealment has faded out

# put() results.
STORED = const(0)
DUPLICATE = const(1)
LATE = const(2)
REJECTED = const(3)  # not a whole number of frames, bigger than the ring, or a stray far
# outside it (the second such packet in a row, or one in sequence, re-anchors the buffer)

SILENCE_PCMU = const(0xFF)
SILENCE_PCMA = const(0xD5)

_TRIM_TICKS = const(25)  # ticks above target + 1 before one frame is dropped (0.5 s at 20 ms)
_SHRINK_TICKS = const(200)  # ticks per frame the target comes down by (2 s of 10 ms frames)
_LATE_FRAMES = const(2)  # an underrun's packet due this many frames into the gap: it was late
_MAX_D_MS = const(1000)  # |D| beyond this is a stream jump, not jitter
_ARRIVAL_MASK = const(0x3FFFFFFF)  # ms clocks may wrap at 2**30 (MicroPython ticks_ms)
_ARRIVAL_HALF = const(0x20000000)


class JitterBuffer:
    def __init__(
        self,
        frame_bytes=160,
        frame_ms=20,
        slots=8,
        silence=SILENCE_PCMU,
        min_ms=20,
        max_ms=100,
        fade=None,
        fade_frames=4,
        loud=None,
    ):
        if slots < 2 or slots & (slots - 1):
            raise ValueError("slots must be a power of two >= 2")
        if frame_bytes <= 0 or frame_ms <= 0 or frame_bytes % frame_ms:
            raise ValueError("frame_bytes must be a whole number of samples per ms")
        if not frame_ms <= min_ms <= max_ms <= (slots - 1) * frame_ms:
            raise ValueError("need frame_ms <= min_ms <= max_ms <= (slots - 1) * frame_ms")
        if fade is not None and len(fade) != 256:
            raise ValueError("fade table must have 256 entries")
        if loud is not None and len(loud) != 256:
            raise ValueError("loud table must have 256 entries")
        self.frame_bytes = frame_bytes
        self.frame_ms = frame_ms
        self.slots = slots
        self.silence = silence
        self._samples_per_ms = frame_bytes // frame_ms
        self._min_ms = min_ms
        self._max_ms = max_ms
        self._fade = fade
        self._fade_frames = fade_frames if fade is not None else 0
        self._loud = loud
        self._data = bytearray(slots * frame_bytes)
        # Invariant: _present[slot] is 1 only for slots within span of the head, so moving
        # the head (forward by _advance, back for an overtaken packet) never meets stale data.
        self._present = bytearray(slots)
        self._last = bytearray(frame_bytes)
        self.reset()

    def set_codec(self, silence, fade=None, fade_frames=4, loud=None):
        """Reuse the buffer for a new stream, perhaps of the other G.711 law: its silence
        code, fade and loud tables (as in the constructor); then reset(). A phone keeps one
        buffer for all its calls, so a call allocates no ring."""
        if fade is not None and len(fade) != 256:
            raise ValueError("fade table must have 256 entries")
        if loud is not None and len(loud) != 256:
            raise ValueError("loud table must have 256 entries")
        self.silence = silence
        self._fade = fade
        self._fade_frames = fade_frames if fade is not None else 0
        self._loud = loud
        self.reset()

    def reset(self):
        """Forget the stream (a new call or a new SSRC); counters start again too."""
        self._anchored = False
        self._playing = False
        self._head = 0  # ring slot of the next frame to play
        self._head_ts = 0  # its RTP timestamp, low 16 bits
        self._span = 0  # frames from the head to the furthest one held, inclusive
        self._count = 0  # frames held
        self._wait = 0  # ticks spent buffering with something held
        self._excess = 0  # consecutive ticks above target + 1
        self._gap = 0  # consecutive ticks without a received frame
        self._has_last = False
        self._last_seq = -1
        self._far = False  # the previous packet fell outside the ring too
        self._jitter16 = 0
        self._have_prev = False
        self._prev_arrival = 0
        self._prev_ts = 0
        self._target_ms = self._min_ms
        self._target = 0  # the target in whole frames, rounded up (_set_target)
        self._set_target(self._min_ms)
        self._jitter_target_ms = self._min_ms  # what J alone asks for
        self._shrink = 0  # ticks the target has been above that
        self._first_ms = 0  # arrival of the first packet since (re)anchoring...
        self._lead = 0  # ...and its frames
        self._underran = False  # the head's timestamp below is where playout ran dry
        self._dry_ts = 0
        for i in range(self.slots):
            self._present[i] = 0
        self.received = 0
        self.played = 0
        self.underruns = 0
        self.overruns = 0
        self.late = 0
        self.duplicates = 0
        self.lost = 0
        self.concealed = 0
        self.rejected = 0
        self.trimmed = 0
        self.resyncs = 0
        self.late_underruns = 0  # underruns a late packet caused (each raised the target)

    @property
    def jitter(self):
        """RFC 3550 interarrival jitter estimate, in timestamp units."""
        return self._jitter16 >> 4

    @property
    def jitter_ms(self):
        return (self._jitter16 >> 4) // self._samples_per_ms

    @property
    def target_ms(self):
        return self._target_ms

    def _set_target(self, ms):
        self._target_ms = ms
        self._target = (ms + self.frame_ms - 1) // self.frame_ms

    @property
    def depth_ms(self):
        """Audio held ahead of the playout point (gaps included), in ms."""
        return self._span * self.frame_ms

    @property
    def playing(self):
        return self._playing

    def _anchor(self, ts):
        for i in range(self.slots):
            self._present[i] = 0
        self._anchored = True
        self._playing = False
        self._head_ts = ts
        self._span = 0
        self._count = 0
        self._wait = 0
        self._excess = 0

    def _advance(self):
        """Move the head past its frame, played or not."""
        if self._present[self._head]:
            self._present[self._head] = 0
            self._count -= 1
        self._head = (self._head + 1) & (self.slots - 1)
        self._head_ts = (self._head_ts + self.frame_bytes) & 0xFFFF
        if self._span:
            self._span -= 1

    def _update_jitter(self, ts, arrival_ms):
        if self._have_prev:
            d_arrival = (arrival_ms - self._prev_arrival) & _ARRIVAL_MASK
            if d_arrival >= _ARRIVAL_HALF:
                d_arrival -= _ARRIVAL_MASK + 1
            d_ts = (ts - self._prev_ts) & 0xFFFF
            if d_ts >= 0x8000:
                d_ts -= 0x10000
            d = d_arrival * self._samples_per_ms - d_ts
            if d < 0:
                d = -d
            if d <= _MAX_D_MS * self._samples_per_ms:
                self._jitter16 += d - ((self._jitter16 + 8) >> 4)
                # one frame + 3 J, in ms (rounded up)
                spm = self._samples_per_ms
                target = self.frame_ms + (3 * (self._jitter16 >> 4) + spm - 1) // spm
                if target < self._min_ms:
                    target = self._min_ms
                elif target > self._max_ms:
                    target = self._max_ms
                self._jitter_target_ms = target
                if target > self._target_ms:
                    self._set_target(target)  # up at once; down slowly, in get()
        self._have_prev = True
        self._prev_arrival = arrival_ms
        self._prev_ts = ts

    def put(self, seq, timestamp, payload, arrival_ms, offset=0, length=-1):
        """Store one packet's payload (payload[offset:offset+length], default: all of it).

        seq is the RTP sequence number, timestamp its RTP timestamp (only the low 16 bits
        are used), arrival_ms the receive time on any ms clock (wrapping at 2**30 is fine).
        Returns STORED, DUPLICATE, LATE or REJECTED."""
        if length < 0:
            length = len(payload) - offset
        frames = length // self.frame_bytes
        if (
            length <= 0
            or length != frames * self.frame_bytes
            or frames > self.slots
            or offset < 0
            or offset + length > len(payload)
        ):
            self.rejected += 1
            return REJECTED
        self.received += 1
        ts = timestamp & 0xFFFF
        continuous = seq == ((self._last_seq + 1) & 0xFFFF)
        self._last_seq = seq
        if not self._anchored:
            if self._underran:
                self._after_underrun(ts)
            self._anchor(ts)
            self._first_ms = arrival_ms
            self._lead = frames
        distance = (ts - self._head_ts) & 0xFFFF
        if distance >= 0x8000:
            distance -= 0x10000
        index = distance // self.frame_bytes  # floor: a misaligned talkspurt rounds down
        if index < -self.slots or index >= 2 * self.slots:
            # Far outside the ring: a new talkspurt after long silence, a restarted sender,
            # or one stray packet. Follow the stream when it is in sequence, stays far, or
            # when nothing is held that following it would throw away.
            if not (continuous or self._far or self._count == 0):
                self._far = True
                self.rejected += 1
                return REJECTED
            self.resyncs += 1
            self._anchor(ts)
            self._first_ms = arrival_ms
            self._lead = frames
            index = 0
        self._far = False
        if index < 0 and not self._playing and self._span - index <= self.slots:
            # Nothing played yet: an earlier packet overtaken by the one we anchored on
            # moves the head back instead of being late.
            self._head = (self._head + index) & (self.slots - 1)
            self._head_ts = (self._head_ts + index * self.frame_bytes) & 0xFFFF
            self._span -= index
            index = 0
        if index + frames > self.slots:
            # Too far ahead to fit: the ring overflows. Drop the oldest frames to make room.
            self.overruns += 1
            drop = index + frames - self.slots
            for _ in range(drop):
                if self._present[self._head]:
                    self.trimmed += 1
                self._advance()
            index -= drop
        result = LATE
        stored = False
        mask = self.slots - 1
        for k in range(frames):
            i = index + k
            if i < 0:
                continue  # this frame's time has already been played
            slot = (self._head + i) & mask
            if self._present[slot]:
                result = DUPLICATE
                continue
            framebuf.copy_into(
                self._data,
                slot * self.frame_bytes,
                payload,
                offset + k * self.frame_bytes,
                self.frame_bytes,
            )
            self._present[slot] = 1
            self._count += 1
            if i + 1 > self._span:
                self._span = i + 1
            stored = True
        if stored:
            result = STORED
        elif result == DUPLICATE:
            self.duplicates += 1
        else:
            self.late += 1
        if result != DUPLICATE:
            self._update_jitter(ts, arrival_ms)
        return result

    def _after_underrun(self, ts):
        """The first packet after an underrun: if it was due well inside the gap (frames
        concealed since), it was late, not the start of a new talkspurt: raise the target."""
        self._underran = False
        due = (ts - self._dry_ts) & 0xFFFF
        if due >= 0x8000:
            due -= 0x10000
        if due // self.frame_bytes + _LATE_FRAMES <= self._gap:
            self.late_underruns += 1
            target = self._target_ms + self.frame_ms
            self._set_target(target if target < self._max_ms else self._max_ms)
            self._shrink = 0

    def _settle_target(self):
        """Once a tick: the target comes down one frame per _SHRINK_TICKS towards what J
        asks for."""
        floor = self._jitter_target_ms
        if self._target_ms > floor:
            self._shrink += 1
            if self._shrink >= _SHRINK_TICKS:
                self._shrink = 0
                target = self._target_ms - self.frame_ms
                self._set_target(target if target > floor else floor)
        else:
            self._shrink = 0

    def _may_trim(self):
        """The frame at the head may be dropped: missing, or (given a loud table) quiet."""
        head = self._head
        if not self._present[head]:
            return True
        if self._loud is None:
            return True
        at = head * self.frame_bytes
        return framebuf.count_marked(self._data, at, self.frame_bytes, self._loud) == 0

    def _conceal(self, out):
        self._gap += 1
        if self._has_last and self._gap <= 1 + self._fade_frames:
            if self._gap > 1:
                framebuf.translate(self._last, 0, self.frame_bytes, self._fade)
            framebuf.copy_into(out, 0, self._last, 0, self.frame_bytes)
            self.concealed += 1
            return CONCEALED
        framebuf.fill(out, 0, self.frame_bytes, self.silence)
        return SILENCE

    def get(self, out, now_ms=-1):
        """Fill out (frame_bytes long) with the next frame of playout; call once per frame
        time. Returns AUDIO, CONCEALED or SILENCE.

        now_ms (the clock of put()'s arrival_ms) lets playout start as soon as the first
        packet has waited target - its own length: the margin a late next packet has. Without
        it, playout starts once the target is buffered or target ticks have passed."""
        if len(out) != self.frame_bytes:
            raise ValueError("out must be %d bytes" % self.frame_bytes)
        self._settle_target()
        if not self._playing:
            if self._count:
                self._wait += 1
                if self._span >= self._target:
                    self._playing = True
                elif now_ms < 0:
                    if self._wait >= self._target:
                        self._playing = True
                else:
                    waited = (now_ms - self._first_ms) & _ARRIVAL_MASK
                    if waited < _ARRIVAL_HALF and (
                        waited + self._lead * self.frame_ms >= self._target_ms
                    ):
                        self._playing = True
            if not self._playing:
                return self._conceal(out)
        head = self._head
        if self._present[head]:
            framebuf.copy_into(out, 0, self._data, head * self.frame_bytes, self.frame_bytes)
            framebuf.copy_into(self._last, 0, out, 0, self.frame_bytes)
            self._has_last = True
            self._gap = 0
            self.played += 1
            self._advance()
            # Latency left over from a jitter spike that has passed: shed a frame (a quiet
            # one: it keeps counting until one comes).
            if self._span > self._target + 1:
                self._excess += 1
                if self._excess >= _TRIM_TICKS and self._may_trim():
                    self._excess = 0
                    if self._present[self._head]:
                        self.trimmed += 1
                    self._advance()
            else:
                self._excess = 0
            return AUDIO
        if not self._count:
            self.underruns += 1
            self._anchored = False
            self._playing = False
            self._underran = True
            self._dry_ts = self._head_ts
            return self._conceal(out)
        if self._span < self._target:
            return self._conceal(out)  # wait a tick: the buffer deepens by one frame
        self.lost += 1
        self._advance()
        return self._conceal(out)
