# voip.dtmf: RFC 4733 telephone-events (DTMF digits 0-9 * # A-D and flash, RFC 4734) sent
# and received over RTP. Sans-I/O: the sender is driven by the caller's packet clock, the
# receiver is fed packets. MIT licence.
#
#    0                   1                   2                   3
#    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
#   |     event     |E|R| volume    |          duration             |
#
# What RFC 4733 asks, and where it is done here:
# - every packet of one event carries the event's start timestamp; the first has the M bit
#   (§2.5.1.1-2): DtmfSender.tick via RtpSender.pack_event(age);
# - duration counts samples from the start to the end of the packet's time, growing
#   (§2.5.1.2); the final packet has E set and goes out three times, each with a new
#   sequence number (§2.5.1.4, §2.5.1.6);
# - a receiver tells key presses apart by timestamp, not by the M bit (which may be lost):
#   the three copies of an end packet (SIPp even repeats their sequence number) are one
#   key press, and a packet a little older than the current event is a straggler (§2.5.2).
#   "A little": up to straggler_samples (2 s at 8 kHz) back. Further back than any packet
#   could straggle, the sender's clock has jumped (a restarted stream, a replayed capture),
#   and the packet starts a new key press.
import struct

from .seqnum import ts_diff

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


KEYS = "0123456789*#ABCD"
# The key of each event code as ready-made strings: indexing KEYS would build a new str for
# every key press.
_KEY_NAMES = tuple(KEYS) + ("flash",)
FLASH = const(16)
EVENT_SIZE = const(4)
_MAX_DURATION_MS = const(5000)  # one event stays in one segment (< 0xFFFF samples at 8 kHz)
_END_COPIES = const(3)


def event_code(key):
    """The RFC 4733 event code of a key: "0"-"9", "*", "#", "A"-"D" (any case), "flash"."""
    if key == "flash":
        return FLASH
    if len(key) == 1:
        code = KEYS.find(key.upper())
        if code >= 0:
            return code
    raise ValueError("no DTMF key %r" % (key,))


def event_key(code):
    """The key of an event code, or None for an event that is not a DTMF key."""
    if 0 <= code <= FLASH:
        return _KEY_NAMES[code]
    return None


def pack_event(buf, offset, event, end, volume, duration):
    """Write one 4-byte telephone-event payload at buf[offset:]; returns 4."""
    struct.pack_into(
        ">BBH",
        buf,
        offset,
        event & 0xFF,
        (0x80 if end else 0) | (volume & 0x3F),
        duration & 0xFFFF if duration < 0xFFFF else 0xFFFF,
    )
    return EVENT_SIZE


def unpack_event(data, offset=0, length=-1):
    """(event, end, volume, duration) of the payload at data[offset:offset+length]."""
    if length < 0:
        length = len(data) - offset
    if length < EVENT_SIZE:
        raise ValueError("telephone-event payload truncated: %d bytes < 4" % length)
    flags = data[offset + 1]
    return (
        data[offset],
        flags >> 7,
        flags & 0x3F,
        (data[offset + 2] << 8) | data[offset + 3],
    )


class DtmfSender:
    """Queues key presses and turns them into telephone-event packets, one per tick.

    Call tick(rtp, buf) once per packet time (samples_per_tick of the audio clock). When it
    returns n > 0, send buf[offset:offset+n] *instead of* that tick's audio packet: it has
    moved rtp's clock on by one tick already. When it returns 0, send audio as usual."""

    def __init__(
        self,
        payload_type=101,
        samples_per_tick=160,
        clock_rate=8000,
        volume=10,
        gap_ms=60,
        queue_size=32,
    ):
        if not 0 <= volume <= 63:
            raise ValueError("volume is 0..63 (-dBm0)")
        self.payload_type = payload_type
        self.samples_per_tick = samples_per_tick
        self.volume = volume
        self._samples_per_ms = clock_rate // 1000
        self._gap_ticks = (gap_ms * self._samples_per_ms + samples_per_tick - 1) // (
            samples_per_tick
        )
        # A ring of queued presses: event codes and durations in samples.
        self._codes = bytearray(queue_size)
        self._durations = [0] * queue_size
        self._first = 0
        self._queued = 0
        self._event = -1  # event being sent, -1 when idle
        self._duration = 0  # its total duration in samples
        self._elapsed = 0  # samples since its start timestamp
        self._ends = 0  # end packets sent
        self._gap = 0  # silent ticks still owed before the next event

    @property
    def busy(self):
        """True while a key press is being sent or waits in the queue."""
        return self._event >= 0 or self._queued > 0 or self._gap > 0

    def send(self, keys, duration_ms=100):
        """Queue key presses ("0"-"9", "*", "#", "A"-"D", or "flash" alone) of duration_ms
        each (40..5000). Raises ValueError for an unknown key or a full queue."""
        if not 40 <= duration_ms <= _MAX_DURATION_MS:
            raise ValueError("duration_ms is 40..%d" % _MAX_DURATION_MS)
        codes = [FLASH] if keys == "flash" else [event_code(key) for key in keys]
        if self._queued + len(codes) > len(self._codes):
            raise ValueError("DTMF queue full")
        duration = duration_ms * self._samples_per_ms
        if duration + _END_COPIES * self.samples_per_tick > 0xFFFF:
            raise ValueError("%d ms does not fit one event segment at this clock" % duration_ms)
        for code in codes:
            at = (self._first + self._queued) % len(self._codes)
            self._codes[at] = code
            self._durations[at] = duration
            self._queued += 1

    def tick(self, rtp, buf, offset=0):
        """Write the next telephone-event packet (12-byte header + 4) at buf[offset:] and
        return its length, or return 0 when no event packet is due this tick."""
        if self._event < 0:
            if self._gap:
                self._gap -= 1
                return 0
            if not self._queued:
                return 0
            self._event = self._codes[self._first]
            self._duration = self._durations[self._first]
            self._first = (self._first + 1) % len(self._codes)
            self._queued -= 1
            self._elapsed = 0
            self._ends = 0
        tick = self.samples_per_tick
        marker = self._elapsed == 0
        sent = self._elapsed + tick  # duration covered by the end of this packet
        if sent >= self._duration or self._ends:
            end = 1
            self._ends += 1
            if self._ends == 1:
                self._duration = sent  # the final duration, repeated by the copies
        else:
            end = 0
        rtp.pack_event(buf, self.payload_type, marker, self._elapsed, EVENT_SIZE, offset)
        pack_event(
            buf,
            offset + 12,
            self._event,
            end,
            self.volume,
            self._duration if end else sent,
        )
        self._elapsed += tick
        rtp.advance(tick)
        if self._ends >= _END_COPIES:
            self._event = -1
            self._gap = self._gap_ticks
        return 12 + EVENT_SIZE


class DtmfReceiver:
    """Turns received telephone-event packets into key presses, each reported once.

    receive() returns the key ("0"-"9", "*", "#", "A"-"D", "flash") on the first packet seen
    of a new key press (whether or not it is the M-bit packet), else None. `key`,
    `duration` (samples, the longest seen) and `ended` describe the latest press."""

    def __init__(self, straggler_samples=16000):
        self.straggler_samples = straggler_samples
        self.key = None
        self.duration = 0
        self.ended = False
        self.presses = 0
        self.repeats = 0  # packets of a press already reported (updates, end copies)
        self.stale = 0  # packets of an earlier press, arriving after a newer one
        self.malformed = 0
        self._have = False
        self._timestamp = 0
        self._event = -1

    def reset(self):
        self.__init__(self.straggler_samples)

    def receive(self, marker, timestamp, payload, offset=0, length=-1):
        if length < 0:
            length = len(payload) - offset
        if length < EVENT_SIZE or offset < 0 or offset + length > len(payload):
            self.malformed += 1
            return None
        event = payload[offset]
        end = payload[offset + 1] >> 7
        duration = (payload[offset + 2] << 8) | payload[offset + 3]
        if self._have:
            age = ts_diff(timestamp, self._timestamp)
            if -self.straggler_samples <= age < 0:
                self.stale += 1
                return None
            if age == 0 and event == self._event:
                self.repeats += 1
                if duration > self.duration:
                    self.duration = duration
                if end:
                    self.ended = True
                return None
            if (
                event == self._event
                and not marker
                and not self.ended
                and 0 < age <= 0xFFFF
                and age >= self.duration
            ):
                # RFC 4733 §2.5.1.3: a long press goes on in a new segment with a new
                # timestamp and no M bit. Same press: nothing to report.
                self.repeats += 1
                self._timestamp = timestamp
                self.duration = duration
                self.ended = bool(end)
                return None
        self._have = True
        self._timestamp = timestamp
        self._event = event
        self.duration = duration
        self.ended = bool(end)
        key = event_key(event)
        self.key = key
        if key is not None:
            self.presses += 1
        return key
