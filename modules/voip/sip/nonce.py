# voip.sip.nonce: the pieces of a stateless digest server: HMAC-SHA256 written out with
# hashlib (MicroPython has no hmac module), a constant-time string comparison, and the bounded
# table of nonce counts that refuses replays. MIT licence.
import hashlib

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


_BLOCK = const(64)  # SHA-256 block size for HMAC
_WINDOW = const(32)  # nonce counts accepted out of order below the highest seen


class Hmac:
    """HMAC-SHA256 (RFC 2104) with the key pads computed once."""

    def __init__(self, key):
        if len(key) > _BLOCK:
            key = hashlib.sha256(key).digest()
        key = bytes(key) + bytes(_BLOCK - len(key))
        self._inner = bytes([b ^ 0x36 for b in key])
        self._outer = bytes([b ^ 0x5C for b in key])

    def digest(self, msg):
        inner = hashlib.sha256(self._inner + msg).digest()
        return hashlib.sha256(self._outer + inner).digest()


def hmac_sha256(key, msg):
    """HMAC-SHA256(key, msg) as bytes (RFC 2104; hashlib only)."""
    return Hmac(key).digest(msg)


def equal(a, b):
    # Compare without returning early so the time taken does not reveal the first mismatch.
    if len(a) != len(b):
        return False
    diff = 0
    for i in range(len(a)):
        diff |= ord(a[i]) ^ ord(b[i])
    return diff == 0


class NonceCounts:
    """The nonce counts seen per nonce, for at most `size` nonces.

    Each nonce keeps the highest nc and a bitmap of the _WINDOW counts below it, so requests
    that overtake each other on UDP are still accepted once each. When the table is full the
    oldest nonce is forgotten and its timestamp becomes a floor: a nonce not in the table and
    not newer than the floor may have been used before, so it is refused as stale (the
    client retries with a fresh nonce) instead of opening a replay window.
    """

    def __init__(self, size):
        self.size = size
        self.table = {}  # nonce -> [timestamp, highest nc, bitmap]
        self.floor = -1

    def accept(self, nonce, ts, nc, now_ms, ttl_ms):
        """"ok", "replay" or "forgotten" for this (nonce, nc); records it when "ok"."""
        entry = self.table.get(nonce)
        if entry is None:
            if ts <= self.floor:
                return "forgotten"
            if len(self.table) >= self.size:
                self._evict(now_ms, ttl_ms)
            self.table[nonce] = [ts, nc, 1]
            return "ok"
        highest, bits = entry[1], entry[2]
        if nc > highest:
            shift = nc - highest
            entry[2] = ((bits << shift) | 1) & ((1 << _WINDOW) - 1) if shift < _WINDOW else 1
            entry[1] = nc
            return "ok"
        back = highest - nc
        if back >= _WINDOW or (bits >> back) & 1:
            return "replay"
        entry[2] = bits | (1 << back)
        return "ok"

    def _evict(self, now_ms, ttl_ms):
        for nonce in [n for n, e in self.table.items() if now_ms - e[0] > ttl_ms]:
            del self.table[nonce]
        if len(self.table) >= self.size:
            oldest = None
            for nonce, e in self.table.items():
                if oldest is None or e[0] < self.table[oldest][0]:
                    oldest = nonce
            self.floor = max(self.floor, self.table.pop(oldest)[0])
