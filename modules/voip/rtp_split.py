# voip.rtp_split: the RTP packets in what one read of a MicroPython UDP socket returned, and
# the read size that keeps them apart. G.711 (one byte per sample). MIT licence.
#
# Why this exists: MicroPython's sockets (unix and ESP32 ports) have no recv_into() or
# recvfrom_into(). Their readinto(buf, n) is py/stream.c's mp_stream_rw, which calls the
# socket's read again and again until n bytes are in or the socket would block. With several
# datagrams queued (Wi-Fi hands them over in bursts; a far end's clock catching up after a
# stall sends them back to back) one readinto returns them glued together, and the last is cut
# to what was left of n: Linux and lwIP both discard the rest of a datagram read short.
# recv(n) returns exactly one datagram, but as a new bytes object: 50 allocations a second
# that the audio path does not make (0 bytes per frame, tests/device/test_media.py).
#
# So the caller reads read_size bytes: the size of the peer's audio packets (header + one
# packet time of G.711: from SDP's ptime first, then from what arrives), and equal-size
# packets never merge. What still can merge is a shorter packet (an RFC 4733 event is 16
# bytes; comfort noise; a peer whose packets are shorter than expected) and what follows it.
# split() finds every packet of a read: an event ends after its 4-byte payload and an audio
# packet after the expected payload, when an RTP header (version 2, the same SSRC, a nearby
# sequence number) starts there; otherwise the buffer is scanned for one (a viper kernel).
# Only the last packet of a read that filled read_size can have been cut: audio() says how
# many payload bytes it lost (the caller conceals them with extend_tail) and learns the
# peer's packet size, from a packet known to be whole (another followed it, or the read ran
# the queue dry), or, when packets exactly fill the read, from consecutive timestamps (a
# longer ptime than expected; two agreeing deltas, so a silence gap is not taken for one).
# Nothing here allocates after __init__.
from array import array

from . import framebuf

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


def find_header_python(buf, start, stop, at):
    """The first k in [start, stop) where an RTP header of the stream of the packet at
    buf[at] could start (version 2, the same SSRC); -1 if none. The viper kernel in
    _rtp_split_viper computes the same; this is its fallback and its oracle."""
    s0, s1, s2, s3 = buf[at + 8], buf[at + 9], buf[at + 10], buf[at + 11]
    for k in range(start, stop):
        if (
            buf[k + 8] == s0
            and buf[k] & 0xC0 == 0x80
            and buf[k + 9] == s1
            and buf[k + 10] == s2
            and buf[k + 11] == s3
        ):
            return k
    return -1


try:
    from ._rtp_split_viper import find_header as _find_header

    VIPER = True
except ImportError:  # CPython, or a MicroPython build without the native emitter
    _find_header = find_header_python
    VIPER = False


_HEADER = const(12)
_EVENT_PAYLOAD = const(4)
_SEQ_WINDOW = const(64)  # a packet following another in one read is at most this far on
MAX_PAYLOAD = const(480)  # 60 ms of G.711: the longest packet time learned
MAX_READ = const(512)  # read_size never exceeds this (a receive buffer of 1 KB leaves room
# after a cut packet to conceal its tail in place)


class RtpSplitter:
    """Packet boundaries in a receive buffer, and the read size that avoids needing them.

    Per read: n = sock.readinto(buf, splitter.read_size); count = splitter.split(buf, n);
    packet i is buf[starts[i]:ends[i]]. For each audio packet, after parsing its header,
    missing = splitter.audio(header, start, i == count - 1) is the number of payload bytes
    the read cut off it (0 almost always)."""

    def __init__(self, max_packets=48):
        self.starts = array("H", [0] * max_packets)
        self.ends = array("H", [0] * max_packets)
        self.max_packets = max_packets
        self.audio_pt = 0
        self.event_pt = -1
        self.payload_bytes = 160
        self.header_bytes = _HEADER
        self.read_size = _HEADER + 160
        self.cut = False  # the last read filled read_size: its last packet may be cut
        self._reset_learning()

    def _reset_learning(self):
        self._have = False
        self._seq = 0
        self._ts = 0
        self._pending = 0  # a timestamp delta seen once, waiting for a second
        self.split_packets = 0  # packets found after the first of a read
        self.cut_packets = 0  # packets a read cut short (audio() returned > 0)
        self.resized = 0  # times payload_bytes changed after set_stream

    def set_stream(self, audio_pt, event_pt=-1, ptime_ms=20, samples_per_ms=8):
        """A new stream: its audio and telephone-event payload types (-1: none) and the
        packet time the peer announced."""
        self.audio_pt = audio_pt
        self.event_pt = event_pt if event_pt is not None else -1
        payload = ptime_ms * samples_per_ms
        if not 0 < payload <= MAX_PAYLOAD:
            payload = 20 * samples_per_ms
        self.payload_bytes = payload
        self.header_bytes = _HEADER
        self._resize()
        self.cut = False
        self._reset_learning()

    def _resize(self):
        size = self.header_bytes + self.payload_bytes
        self.read_size = size if size < MAX_READ else MAX_READ

    def split(self, buf, n):
        """Find the packets in buf[:n] (one read); returns how many (starts, ends)."""
        if n > len(buf):
            raise ValueError("%d bytes read into a %d-byte buffer" % (n, len(buf)))
        self.cut = n >= self.read_size
        count = 0
        at = 0
        last = self.max_packets - 1
        while at < n:
            end = n if count == last else self._end_of(buf, at, n)
            self.starts[count] = at
            self.ends[count] = end
            count += 1
            at = end
        if count > 1:
            self.split_packets += count - 1
        return count

    def _end_of(self, buf, at, n):
        """Where the packet starting at buf[at] ends: at the next packet's header, or n."""
        if n - at < 2 * _HEADER:
            return n  # no room for a second header: whatever this is, it is all one
        first = buf[at]
        if first & 0xC0 != 0x80:
            return n  # not RTP: the caller drops it as malformed
        header = _HEADER + 4 * (first & 0x0F)
        if first & 0x10:
            if at + header + 4 > n:
                return n
            header += 4 + 4 * ((buf[at + header + 2] << 8) | buf[at + header + 3])
        stop = n - _HEADER + 1  # the last place another header fits
        if at + header >= stop:
            return n
        pt = buf[at + 1] & 0x7F
        if pt == self.event_pt and not first & 0x20:
            guess = at + header + _EVENT_PAYLOAD
        elif pt == self.audio_pt:
            guess = at + header + self.payload_bytes
        else:
            guess = 0
        if guess and guess < stop and self._follows(buf, at, guess):
            return guess
        k = at + header
        while k < stop:
            k = _find_header(buf, k, stop, at)
            if k < 0:
                break
            if self._follows(buf, at, k):
                return k
            k += 1
        return n

    @staticmethod
    def _follows(buf, at, k):
        """Whether an RTP header of the same stream starts at buf[k] (k + 12 <= len)."""
        if buf[k] & 0xC0 != 0x80:
            return False
        for i in range(8, 12):
            if buf[k + i] != buf[at + i]:
                return False
        # the same sequence number is allowed: SIPp repeats it in its events' end copies
        d = (((buf[k + 2] << 8) | buf[k + 3]) - ((buf[at + 2] << 8) | buf[at + 3])) & 0xFFFF
        return d <= _SEQ_WINDOW or d >= 0x10000 - _SEQ_WINDOW

    def audio(self, header, start, last):
        """Learn from an audio packet split out of the last read, header parsed (with
        RtpHeader.unpack_from(buf, end - start, start)). Returns how many payload bytes it
        lost to the read size (the caller conceals them), 0 when it is whole."""
        payload = header.payload_length
        self.header_bytes = header.payload_offset - start
        if not (last and self.cut):
            # whole: another packet followed it in the read, or the read ran the queue dry
            if 0 < payload <= MAX_PAYLOAD and payload != self.payload_bytes:
                self.payload_bytes = payload
                self.resized += 1
            self._pending = 0
        elif payload == self.payload_bytes:
            # It filled the read exactly: whole, or longer and cut. Consecutive packets'
            # timestamps tell (a talkspurt's first packet, marked, may follow silence).
            seq, ts = header.sequence, header.timestamp_lo
            if self._have and not header.marker and seq == (self._seq + 1) & 0xFFFF:
                d = (ts - self._ts) & 0xFFFF
                if d == payload or not payload < d <= MAX_PAYLOAD:
                    self._pending = 0
                elif d != self._pending:
                    self._pending = d
                else:
                    self.payload_bytes = d
                    self.resized += 1
                    self._pending = 0
        self._have = True
        self._seq = header.sequence
        self._ts = header.timestamp_lo
        self._resize()
        if last and self.cut and payload < self.payload_bytes:
            self.cut_packets += 1
            return self.payload_bytes - payload
        return 0


def extend_tail(buf, end, have, missing):
    """Conceal the `missing` bytes cut off a G.711 payload that ends at buf[end] and has
    `have` bytes: repeat its last bytes after it (buf[end : end + missing])."""
    period = missing if missing < have else have
    if period <= 0:
        raise ValueError("nothing to repeat")
    done = 0
    while done < missing:
        chunk = missing - done
        if chunk > period:
            chunk = period
        framebuf.copy_into(buf, end + done, buf, end + done - period, chunk)
        done += chunk
