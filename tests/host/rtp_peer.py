"""A caller's RTP end for relay tests and the benchmark: sends G.711 frames, records what it gets.

Deliberately independent of the relay's own RTP code (it packs and parses headers with
struct itself), so a bug there cannot cancel out in a test.
"""

import asyncio
import os
import struct
import time

_HEADER = struct.Struct("!BBHII")


class Received:
    __slots__ = ("t", "pt", "marker", "seq", "ts", "ssrc", "payload")

    def __init__(self, t, data):
        b0, b1, self.seq, self.ts, self.ssrc = _HEADER.unpack_from(data)
        assert b0 == 0x80, "relay sent a header with CSRC/extension/padding: %02x" % b0
        self.t = t
        self.pt = b1 & 0x7F
        self.marker = b1 >> 7
        self.payload = bytes(data[12:])


class RtpPeer(asyncio.DatagramProtocol):
    def __init__(self, pt=0):
        self.pt = pt
        self.received = []
        self.transport = None
        self.dest = None
        rnd = os.urandom(10)
        self.ssrc = int.from_bytes(rnd[:4], "big")
        self.seq = int.from_bytes(rnd[4:6], "big")
        self.ts = int.from_bytes(rnd[6:], "big")
        self.on_packet = None

    @classmethod
    async def open(cls, pt=0):
        peer = cls(pt)
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: peer, local_addr=("127.0.0.1", 0))
        return peer

    @property
    def address(self):
        return self.transport.get_extra_info("sockname")[:2]

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        packet = Received(time.monotonic(), data)
        self.received.append(packet)
        if self.on_packet is not None:
            self.on_packet(packet)

    def packet(self, payload, pt=None, marker=False, seq=None, ts=None, ssrc=None):
        header = _HEADER.pack(
            0x80, (self.pt if pt is None else pt) | (0x80 if marker else 0),
            (self.seq if seq is None else seq) & 0xFFFF,
            (self.ts if ts is None else ts) & 0xFFFFFFFF,
            self.ssrc if ssrc is None else ssrc,
        )
        return header + payload

    def send(self, payload, **fields):
        """Send one audio frame with the next sequence number and timestamp."""
        self.transport.sendto(self.packet(payload, **fields), self.dest)
        self.seq = (self.seq + 1) & 0xFFFF
        self.ts = (self.ts + len(payload)) & 0xFFFFFFFF

    def send_raw(self, data):
        self.transport.sendto(data, self.dest)

    async def stream(self, payloads, interval=0.02):
        """Send frames at absolute deadlines `interval` apart."""
        loop = asyncio.get_running_loop()
        deadline = loop.time()
        for payload in payloads:
            self.send(payload)
            deadline += interval
            delay = deadline - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)

    def close(self):
        if self.transport is not None:
            self.transport.close()

    async def wait_packets(self, count, timeout=10.0):
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while len(self.received) < count:
            if loop.time() > end:
                raise AssertionError(
                    "got %d RTP packets, expected %d" % (len(self.received), count)
                )
            await asyncio.sleep(0.01)
