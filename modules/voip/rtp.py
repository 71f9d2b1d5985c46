# voip.rtp: RTP (RFC 3550 §5.1) headers packed and parsed in place, and the sending side's
# sequence number / timestamp / SSRC state. MIT licence.
#
#    0                   1                   2                   3
#    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
#   |V=2|P|X|  CC   |M|     PT      |       sequence number         |
#   |                           timestamp                           |
#   |           synchronization source (SSRC) identifier            |
#   |            contributing source (CSRC) identifiers (CC)        |
#   | extension profile (if X)      |  extension length (32-bit words)|
#   | payload ... | padding ... | padding count (if P)              |
#
# Two ways in:
# - the device's hot path: `pack_header` / `RtpSender.pack` write 12 bytes into a preallocated
#   buffer, and `RtpHeader.unpack_from` fills one reusable object. Neither allocates.
# - everywhere else (relay, tests): `parse(data) -> RtpPacket` and `RtpPacket.serialize()`.
#
# Why 32-bit fields are kept as two 16-bit halves on the hot path: on the 32-bit ESP32 a
# MicroPython small int holds 31 bits, so a random timestamp or SSRC (>= 2**30 three times in
# four) would be boxed on the heap every time it is computed. `RtpHeader.timestamp` and
# `.ssrc` still give the whole value, as properties, for code that is not on the hot path.
import os
import struct

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


HEADER_SIZE = const(12)
_VERSION_BITS = const(0x80)  # V=2, P=0, X=0, CC=0


def pack_header(buf, marker, payload_type, sequence, timestamp, ssrc, offset=0):
    """Write a 12-byte RTP header (no CSRC, no extension, no padding) at buf[offset:].

    Returns 12. `timestamp` and `ssrc` are whole 32-bit ints (on an ESP32 prefer RtpSender,
    which never builds them)."""
    struct.pack_into(
        ">BBHII",
        buf,
        offset,
        _VERSION_BITS,
        (0x80 if marker else 0) | (payload_type & 0x7F),
        sequence & 0xFFFF,
        timestamp & 0xFFFFFFFF,
        ssrc & 0xFFFFFFFF,
    )
    return HEADER_SIZE


class RtpHeader:
    """A reusable parsed header: `unpack_from` overwrites every field in place.

    After a successful unpack_from: version, padding, extension, csrc_count, marker (0/1),
    payload_type, sequence, timestamp_hi/timestamp_lo and ssrc_hi/ssrc_lo (16-bit halves),
    csrc_offset, extension_profile, extension_offset and extension_length (bytes of extension
    data after its 4-byte header; 0 and offset 0 without X), padding_length, payload_offset,
    payload_length."""

    def __init__(self):
        self.version = 2
        self.padding = 0
        self.extension = 0
        self.csrc_count = 0
        self.marker = 0
        self.payload_type = 0
        self.sequence = 0
        self.timestamp_hi = 0
        self.timestamp_lo = 0
        self.ssrc_hi = 0
        self.ssrc_lo = 0
        self.csrc_offset = HEADER_SIZE
        self.extension_profile = 0
        self.extension_offset = 0
        self.extension_length = 0
        self.padding_length = 0
        self.payload_offset = 0
        self.payload_length = 0

    @property
    def timestamp(self):
        return (self.timestamp_hi << 16) | self.timestamp_lo

    @property
    def ssrc(self):
        return (self.ssrc_hi << 16) | self.ssrc_lo

    def unpack_from(self, data, length=None, offset=0):
        """Parse the header of the packet in data[offset : offset + length]; return the
        payload offset.

        length defaults to the rest of data. Offsets (payload_offset, csrc_offset,
        extension_offset) count from the start of data, so the payload is
        data[payload_offset : payload_offset + payload_length] (padding excluded) whatever
        the packet's offset: a receiver can parse several packets in one buffer without
        slicing it. Raises ValueError, naming what is wrong, for a malformed packet; the
        fields are then unspecified."""
        if offset < 0 or offset > len(data):
            raise ValueError("RTP offset %d outside the %d-byte buffer" % (offset, len(data)))
        if length is None:
            length = len(data) - offset
        elif offset + length > len(data):
            raise ValueError("RTP length %d exceeds the %d-byte buffer" % (length, len(data)))
        if length < HEADER_SIZE:
            raise ValueError("RTP packet truncated: %d bytes < 12" % length)
        first = data[offset]
        version = first >> 6
        if version != 2:
            raise ValueError("RTP version %d is not 2" % version)
        self.version = version
        self.padding = (first >> 5) & 1
        self.extension = (first >> 4) & 1
        self.csrc_count = first & 0x0F
        second = data[offset + 1]
        self.marker = second >> 7
        self.payload_type = second & 0x7F
        self.sequence = (data[offset + 2] << 8) | data[offset + 3]
        self.timestamp_hi = (data[offset + 4] << 8) | data[offset + 5]
        self.timestamp_lo = (data[offset + 6] << 8) | data[offset + 7]
        self.ssrc_hi = (data[offset + 8] << 8) | data[offset + 9]
        self.ssrc_lo = (data[offset + 10] << 8) | data[offset + 11]
        self.csrc_offset = offset + HEADER_SIZE
        end = offset + length
        pos = offset + HEADER_SIZE + 4 * self.csrc_count
        if pos > end:
            raise ValueError("RTP packet has truncated CSRC list")
        if self.extension:
            # RFC 3550 §5.3.1: a 4-byte header (profile, length in 32-bit words) then data.
            if pos + 4 > end:
                raise ValueError("RTP packet has truncated header extension")
            self.extension_profile = (data[pos] << 8) | data[pos + 1]
            self.extension_length = 4 * ((data[pos + 2] << 8) | data[pos + 3])
            self.extension_offset = pos + 4
            pos += 4 + self.extension_length
            if pos > end:
                raise ValueError("RTP packet has truncated header extension")
        else:
            self.extension_profile = 0
            self.extension_offset = 0
            self.extension_length = 0
        padding_length = 0
        if self.padding:
            # RFC 3550 §5.1: the last octet counts the padding octets, itself included.
            padding_length = data[end - 1]
            if padding_length == 0:
                raise ValueError("RTP padding length 0 is invalid")
            if padding_length > end - pos:
                raise ValueError(
                    "RTP padding larger than payload: %d > %d bytes"
                    % (padding_length, end - pos)
                )
        self.padding_length = padding_length
        self.payload_offset = pos
        self.payload_length = end - pos - padding_length
        return pos

    def csrc(self, data, index):
        """The index-th CSRC identifier of the packet last unpacked from data."""
        if not 0 <= index < self.csrc_count:
            raise IndexError("CSRC index out of range")
        return struct.unpack_from(">I", data, self.csrc_offset + 4 * index)[0]


class RtpPacket:
    """A whole RTP packet as plain fields, for code off the hot path (relay, tests)."""

    def __init__(
        self,
        payload_type=0,
        marker=0,
        sequence=0,
        timestamp=0,
        ssrc=0,
        payload=b"",
        csrc=None,
        extension_profile=None,
        extension=None,
        padding_length=0,
    ):
        self.version = 2
        self.payload_type = payload_type
        self.marker = marker
        self.sequence = sequence
        self.timestamp = timestamp
        self.ssrc = ssrc
        self.payload = payload
        self.csrc = [] if csrc is None else csrc
        # extension_profile None means no header extension (X=0); extension is its data.
        self.extension_profile = extension_profile
        self.extension = extension
        self.padding_length = padding_length

    @classmethod
    def parse(cls, data):
        header = RtpHeader()
        start = header.unpack_from(data)
        packet = cls(
            payload_type=header.payload_type,
            marker=header.marker,
            sequence=header.sequence,
            timestamp=header.timestamp,
            ssrc=header.ssrc,
            payload=bytes(data[start : start + header.payload_length]),
            csrc=[header.csrc(data, i) for i in range(header.csrc_count)],
            padding_length=header.padding_length,
        )
        if header.extension:
            packet.extension_profile = header.extension_profile
            at = header.extension_offset
            packet.extension = bytes(data[at : at + header.extension_length])
        return packet

    def serialize(self):
        """The packet's bytes. Padding, if any, is zeros ending in its count."""
        if len(self.csrc) > 15:
            raise ValueError("RTP packet cannot carry %d CSRCs (max 15)" % len(self.csrc))
        extension = self.extension or b""
        if len(extension) % 4:
            raise ValueError("RTP header extension must be a multiple of 4 bytes")
        if not 0 <= self.padding_length <= 255:
            raise ValueError("RTP padding length must be 0..255")
        has_extension = self.extension_profile is not None
        first = 0x80 | len(self.csrc)
        if self.padding_length:
            first |= 0x20
        if has_extension:
            first |= 0x10
        out = bytearray(HEADER_SIZE)
        pack_header(out, self.marker, self.payload_type, self.sequence, self.timestamp, self.ssrc)
        out[0] = first
        for source in self.csrc:
            out.extend(struct.pack(">I", source))
        if has_extension:
            out.extend(struct.pack(">HH", self.extension_profile, len(extension) // 4))
            out.extend(extension)
        out.extend(self.payload)
        if self.padding_length:
            out.extend(bytes(self.padding_length - 1))
            out.append(self.padding_length)
        return bytes(out)

    def __bytes__(self):
        return self.serialize()

    def __repr__(self):
        return "RtpPacket(seq=%d, ts=%d, marker=%d, pt=%d, %d bytes)" % (
            self.sequence,
            self.timestamp,
            self.marker,
            self.payload_type,
            len(self.payload),
        )


def parse(data):
    """Parse one RTP packet into an RtpPacket; ValueError if malformed."""
    return RtpPacket.parse(data)


def _random32(rnd, at):
    return (rnd[at] << 24) | (rnd[at + 1] << 16) | (rnd[at + 2] << 8) | rnd[at + 3]


class RtpSender:
    """The sending side of one RTP stream: SSRC, sequence number, media clock.

    Initial sequence number, timestamp and SSRC are random (RFC 3550 §5.1, §8) unless given.
    Call `pack` once per packet with the samples it carries; the first packet and the first
    after `skip`/`talkspurt` carry the marker bit (RFC 3551 §4.1: start of a talkspurt).
    Only 16-bit halves of the timestamp and SSRC are stored, so nothing here allocates on a
    32-bit port either."""

    def __init__(self, payload_type, ssrc=None, sequence=None, timestamp=None):
        rnd = os.urandom(10)
        if ssrc is None:
            ssrc = _random32(rnd, 0)
        if timestamp is None:
            timestamp = _random32(rnd, 4)
        if sequence is None:
            sequence = (rnd[8] << 8) | rnd[9]
        self.payload_type = payload_type & 0x7F
        self.sequence = sequence & 0xFFFF
        self._ts_hi = (timestamp >> 16) & 0xFFFF
        self._ts_lo = timestamp & 0xFFFF
        self._ssrc_hi = (ssrc >> 16) & 0xFFFF
        self._ssrc_lo = ssrc & 0xFFFF
        self._marker = 1
        self.packet_count = 0  # packets and payload octets sent: RTCP SR wants both
        self.octet_count = 0

    @property
    def timestamp(self):
        """The timestamp the next audio packet will carry."""
        return (self._ts_hi << 16) | self._ts_lo

    @property
    def ssrc(self):
        return (self._ssrc_hi << 16) | self._ssrc_lo

    def advance(self, samples):
        """Move the media clock on by samples (0 <= samples < 2**16) without sending."""
        lo = self._ts_lo + samples
        if lo > 0xFFFF:
            self._ts_hi = (self._ts_hi + 1) & 0xFFFF
            lo &= 0xFFFF
        self._ts_lo = lo

    def skip(self, samples):
        """A packet time with nothing sent (silence suppression): the clock moves on and the
        next packet starts a talkspurt."""
        self.advance(samples)
        self._marker = 1

    def talkspurt(self):
        """Set the marker bit on the next packet."""
        self._marker = 1

    def _write(self, buf, offset, marker, payload_type, ts_hi, ts_lo, payload_length):
        struct.pack_into(
            ">BBHHHHH",
            buf,
            offset,
            _VERSION_BITS,
            (0x80 if marker else 0) | payload_type,
            self.sequence,
            ts_hi,
            ts_lo,
            self._ssrc_hi,
            self._ssrc_lo,
        )
        self.sequence = (self.sequence + 1) & 0xFFFF
        self.packet_count += 1
        self.octet_count += payload_length

    def pack(self, buf, samples, payload_length=None, offset=0):
        """Write the header of the next packet, carrying `samples` samples, at buf[offset:];
        advance sequence and clock. payload_length (default: samples, as for G.711) feeds
        octet_count. Returns 12."""
        marker = self._marker
        self._marker = 0
        self._write(
            buf,
            offset,
            marker,
            self.payload_type,
            self._ts_hi,
            self._ts_lo,
            samples if payload_length is None else payload_length,
        )
        self.advance(samples)
        return HEADER_SIZE

    def pack_event(self, buf, payload_type, marker, age, payload_length, offset=0):
        """Write a header stamped `age` samples (0 <= age < 2**16) before the current clock,
        as RFC 4733 events are (every packet of an event carries its start time). Advances
        the sequence number, not the clock. Returns 12."""
        lo = self._ts_lo - age
        hi = self._ts_hi
        if lo < 0:
            lo += 0x10000
            hi = (hi - 1) & 0xFFFF
        self._write(buf, offset, marker, payload_type & 0x7F, hi, lo, payload_length)
        return HEADER_SIZE
