"""Who may call the relay: allowlisted source addresses, and a lockout for digest guessers.

Two pieces the SIP endpoint combines with ``voip.sip.digest.DigestServer``:

- ``Allowlist``: addresses and CIDR networks (host names are resolved once, at start) whose
  requests are admitted without digest. Matching is on the packet's source address, never on
  anything written inside the message, which a caller controls.
- ``FailureLimiter``: counts digest failures per source address (not per port: a guesser picks
  a new port at will) in a sliding window; past ``max_failures`` the address is locked out for
  ``lockout_ms``. The table is bounded: when full, expired entries go first, then the entry
  touched longest ago, so spoofed sources can only evict each other, at worst freeing a
  lockout early, never growing memory.
"""

import collections
import ipaddress
import logging
import socket

log = logging.getLogger("sipmote.relay.admission")


class Allowlist:
    def __init__(self, entries=(), resolve=None):
        """`entries`: strings from the config (address, CIDR or host name)."""
        self.networks = []
        resolve = resolve or _resolve
        for entry in entries:
            try:
                self.networks.append(ipaddress.ip_network(entry, strict=False))
                continue
            except ValueError:
                pass
            addresses = resolve(entry)
            if not addresses:
                log.warning("allowlist: %s does not resolve; ignored", entry)
            for address in addresses:
                self.networks.append(ipaddress.ip_network(address))

    def __contains__(self, host):
        try:
            address = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            return False
        if address.version == 6 and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self.networks)

    def __bool__(self):
        return bool(self.networks)


def _resolve(name):
    try:
        infos = socket.getaddrinfo(name, None, proto=socket.IPPROTO_UDP)
    except OSError:
        return []
    return sorted({info[4][0] for info in infos})


class _Entry:
    __slots__ = ("times", "locked_until")

    def __init__(self):
        self.times = collections.deque()
        self.locked_until = 0


class FailureLimiter:
    def __init__(self, max_failures=5, window_ms=60000, lockout_ms=300000, table_size=4096):
        self.max_failures = max_failures
        self.window_ms = window_ms
        self.lockout_ms = lockout_ms
        self.table_size = table_size
        self._table = collections.OrderedDict()  # source host -> _Entry, oldest first

    def __len__(self):
        return len(self._table)

    def locked(self, host, now_ms):
        """True while `host` is locked out."""
        entry = self._table.get(host)
        return entry is not None and entry.locked_until > now_ms

    def failure(self, host, now_ms):
        """Record one failed attempt; returns True when this failure starts a lockout."""
        entry = self._table.get(host)
        if entry is None:
            self._make_room(now_ms)
            entry = self._table[host] = _Entry()
        else:
            self._table.move_to_end(host)
        times = entry.times
        while times and now_ms - times[0] >= self.window_ms:
            times.popleft()
        times.append(now_ms)
        if len(times) >= self.max_failures and entry.locked_until <= now_ms:
            entry.locked_until = now_ms + self.lockout_ms
            times.clear()
            return self.lockout_ms > 0
        return False

    def success(self, host):
        """A good answer clears the source's count (a lockout, though, runs its course)."""
        entry = self._table.get(host)
        if entry is not None and entry.locked_until == 0:
            del self._table[host]

    def _stale(self, entry, now_ms):
        if entry.locked_until > now_ms:
            return False
        return not entry.times or now_ms - entry.times[-1] >= self.window_ms

    def _make_room(self, now_ms):
        if len(self._table) < self.table_size:
            return
        for host in [h for h, e in self._table.items() if self._stale(e, now_ms)]:
            del self._table[host]
        while len(self._table) >= self.table_size:
            self._table.popitem(last=False)
