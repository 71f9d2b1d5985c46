# tests/lib/udp_stream_model.py: what MicroPython's sock.readinto(buf, n) returns from a UDP
# socket with datagrams queued, for tests on either runtime. MIT licence.
#
# py/stream.c's mp_stream_rw calls the socket's read until it has n bytes or the socket
# would block; each call takes one datagram, cut by the kernel (or lwIP) to what is left of
# n, the rest of that datagram discarded. tests/device/test_media_burst.py checks this model
# against the unix port's real socket.


def stream_read(queue, n):
    """Pop datagrams off `queue` (a list of bytes) as one readinto(buf, n) would; return
    the bytes it put in buf."""
    out = bytearray()
    while queue and len(out) < n:
        datagram = queue.pop(0)
        out += datagram[: n - len(out)]
    return out
