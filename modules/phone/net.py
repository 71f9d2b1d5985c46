# phone.net: UDP addresses the same way on the ESP32 and the unix port. MIT licence.
#
# The ESP32 port's sockets take and return (ip, port) tuples; the unix port's take the opaque
# sockaddr that getaddrinfo returns and give the same back from recvfrom. The app speaks
# (host, port) tuples of strings and ints everywhere; these two functions convert, with a small
# bounded cache so a steady SIP exchange does not resolve a name per datagram.
import socket

_cache = {}
_CACHE_MAX = 16


def sockaddr(host, port):
    """What sendto/bind/connect want for (host, port)."""
    key = (host, port)
    addr = _cache.get(key)
    if addr is None:
        addr = socket.getaddrinfo(host, port, 0, socket.SOCK_DGRAM)[0][-1]
        if len(_cache) >= _CACHE_MAX:
            _cache.clear()
        _cache[key] = addr
    return addr


def peer(addr):
    """(ip, port) from what recvfrom returned."""
    if isinstance(addr, tuple):
        return addr[0], addr[1]
    # the unix port's recvfrom gives a packed sockaddr (the ESP32's, a tuple: above)
    decoded = socket.sockaddr(addr)  # type: ignore[attr-defined]  # (family, ip, port)
    family, ip, port = decoded[0], decoded[1], decoded[2]
    if hasattr(socket, "inet_ntop"):
        return socket.inet_ntop(family, ip), port
    return ".".join(str(b) for b in ip), port


def resolve_ip(host):
    """The IPv4 address of a host name (or the address itself); None when it does not
    resolve."""
    try:
        return peer(socket.getaddrinfo(host, 5060, 0, socket.SOCK_DGRAM)[0][-1])[0]
    except (OSError, IndexError):
        return None


def udp_socket(local_ip, port):
    """A non-blocking UDP socket bound to local_ip:port."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    except (OSError, AttributeError):
        pass
    s.bind(sockaddr(local_ip, port))
    s.setblocking(False)
    return s
