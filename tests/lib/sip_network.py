# tests/lib/sip_network.py: an in-memory UDP "network" for sans-I/O SIP parties, for CPython and
# MicroPython tests alike. MIT licence.
#
# Parties are objects with receive(data, addr, now_ms), tick(now_ms), outgoing(), events() and
# next_deadline() (UserAgent), or plain callables `responder(data, src, now_ms) -> [(bytes,
# dst)]` (scripted registrars and proxies). Datagrams are delivered at once; `fate(data, src,
# dst)` decides how many copies arrive (0 lost, 1, 2 duplicated). Time jumps from one deadline
# to the next, so minutes of SIP timers run in microseconds.


class Network:
    def __init__(self):
        self.parties = {}  # addr -> party
        self.events = {}  # addr -> [event, ...]
        self.log = []  # (now, src, dst, first line) of every datagram sent
        self.fate = None
        self.now = 0

    def add(self, addr, party):
        self.parties[addr] = party
        self.events[addr] = []
        return party

    def kinds(self, addr):
        return [e.kind for e in self.events[addr]]

    def take(self, addr):
        ev = self.events[addr]
        self.events[addr] = []
        return ev

    def _flush(self):
        busy = False
        for addr, party in list(self.parties.items()):
            if callable(party) and not hasattr(party, "outgoing"):
                continue
            for data, dst in party.outgoing():
                busy = True
                self._deliver(data, addr, dst)
            self.events[addr].extend(party.events())
        return busy

    def _deliver(self, data, src, dst):
        first = data.split(b"\r\n", 1)[0].decode("utf-8", "replace")
        self.log.append((self.now, src, dst, first))
        copies = 1 if self.fate is None else self.fate(data, src, dst)
        target = self.parties.get(dst)
        for _ in range(copies):
            if target is None:
                continue
            if hasattr(target, "receive"):
                target.receive(data, src, self.now)
            else:
                for reply, to in target(data, src, self.now) or ():
                    self._deliver(reply, dst, to)

    def settle(self):
        for _ in range(1000):
            if not self._flush():
                return
        raise AssertionError("the parties never went quiet")

    def run(self, until):
        """Deliver, then jump from deadline to deadline up to `until` (inclusive)."""
        self.settle()
        while True:
            deadlines = []
            for party in self.parties.values():
                if hasattr(party, "next_deadline"):
                    d = party.next_deadline()
                    if d is not None:
                        deadlines.append(d)
            if not deadlines or min(deadlines) > until:
                self.now = max(self.now, until)
                return
            self.now = max(self.now, min(deadlines))
            for party in self.parties.values():
                if hasattr(party, "tick"):
                    party.tick(self.now)
            self.settle()

    def sent(self, src=None, dst=None, prefix=""):
        return [
            line
            for _, s, d, line in self.log
            if (src is None or s == src) and (dst is None or d == dst) and line.startswith(prefix)
        ]
