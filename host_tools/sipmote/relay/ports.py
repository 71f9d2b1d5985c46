"""RTP port allocation from the configured range.

RTP takes an even port and RTCP the odd one above it (RFC 3550 11), so the allocator hands out
even ports only and a range of N ports serves N/2 calls. Ports are handed out round-robin, so a
port just released is the last to be reused: a late packet of the previous call then finds
nothing listening instead of landing in the next call. ``bind_rtp_socket`` binds the chosen
port and moves on when another process already holds it.
"""

import socket


class PortsExhausted(RuntimeError):
    """Every port of the range is in use: the call is answered 503."""


class RtpPortAllocator:
    def __init__(self, port_min, port_max):
        first = port_min + (port_min & 1)  # first even port
        if first + 1 > port_max:
            raise ValueError("RTP port range %d..%d holds no even/odd pair" % (port_min, port_max))
        self.port_min = first
        self.port_max = port_max
        self._count = (port_max - first + 1) // 2
        self._next = 0
        self._in_use = set()

    @property
    def capacity(self):
        return self._count

    @property
    def in_use(self):
        return len(self._in_use)

    def acquire(self):
        """The next free even port (raises PortsExhausted)."""
        for _ in range(self._count):
            port = self.port_min + 2 * self._next
            self._next = (self._next + 1) % self._count
            if port not in self._in_use:
                self._in_use.add(port)
                return port
        raise PortsExhausted("all %d RTP ports in use" % self._count)

    def release(self, port):
        """Give a port back; releasing twice or a foreign port is harmless."""
        self._in_use.discard(port)


def bind_rtp_socket(allocator, host, family=None):
    """A non-blocking UDP socket bound to the next free port the OS also agrees is free.

    Returns (socket, port). Tries at most the whole range once, then raises PortsExhausted.
    A port another process holds is skipped for the rest of this attempt and given back after
    it, so a later call may find it free again.
    """
    family = family or (socket.AF_INET6 if ":" in host else socket.AF_INET)
    held = []
    try:
        for _ in range(allocator.capacity):
            port = allocator.acquire()
            sock = socket.socket(family, socket.SOCK_DGRAM)
            try:
                sock.bind((host, port))
            except OSError:
                sock.close()
                held.append(port)
                continue
            sock.setblocking(False)
            return sock, port
        raise PortsExhausted(
            "no bindable RTP port in %d..%d" % (allocator.port_min, allocator.port_max)
        )
    finally:
        # ports another process holds: give them back so a later call may try them again
        for port in held:
            allocator.release(port)
