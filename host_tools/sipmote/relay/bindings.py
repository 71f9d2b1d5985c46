"""The relay's registrar table: where each configured device can be reached.

Only devices named in the config can register (the SIP endpoint checks their digest first), so
the table holds at most ``len(devices) * max_per_user`` bindings. Semantics follow RFC 3261
10.3: a REGISTER replaces the bindings it names, expires=0 removes one, ``*`` removes all;
a binding refreshed with the same Call-ID must carry a higher CSeq (else 500 / ignored); when a
user has ``max_per_user`` bindings, the one expiring soonest makes room. The source address of
the REGISTER is kept with the binding: the relay sends to it, which also works when the
device sits behind a NAT that rewrote its address.
"""


class Binding:
    __slots__ = ("user", "contact", "expires_at_ms", "call_id", "cseq", "source")

    def __init__(self, user, contact, expires_at_ms, call_id, cseq, source):
        self.user = user
        self.contact = contact  # the Contact URI as the device sent it (str)
        self.expires_at_ms = expires_at_ms
        self.call_id = call_id
        self.cseq = cseq
        self.source = source  # (host, port) the REGISTER came from

    def expires_in(self, now_ms):
        return max(0, (self.expires_at_ms - now_ms + 999) // 1000)

    def __repr__(self):
        return "Binding(%r, %r, source=%r)" % (self.user, self.contact, self.source)


class OutOfOrder(ValueError):
    """Same Call-ID with a CSeq not above the stored one (RFC 3261 10.3 step 7)."""


class BindingTable:
    def __init__(self, max_per_user=4, min_expires=60, max_expires=3600, default_expires=3600):
        self.max_per_user = max_per_user
        self.min_expires = min_expires
        self.max_expires = max_expires
        self.default_expires = default_expires
        self._by_user = {}  # user -> list of Binding

    def clamp(self, expires):
        """The expiry we grant (0 stays 0: it means remove). Below min_expires -> 423 upstream."""
        if expires == 0:
            return 0
        return min(max(expires, self.min_expires), self.max_expires)

    def update(self, user, contacts, call_id, cseq, source, now_ms):
        """Apply one REGISTER's contacts: list of (contact_uri, expires_s) with expires clamped.

        Raises OutOfOrder for a stale CSeq. Returns the user's current bindings.
        """
        current = self.lookup(user, now_ms)
        for binding in current:
            if binding.call_id == call_id and cseq <= binding.cseq:
                raise OutOfOrder("CSeq %d not above %d" % (cseq, binding.cseq))
        for contact, expires in contacts:
            current = [b for b in current if not same_contact(b.contact, contact)]
            if expires > 0:
                current.append(
                    Binding(user, contact, now_ms + expires * 1000, call_id, cseq, source)
                )
        current.sort(key=lambda b: b.expires_at_ms, reverse=True)
        del current[self.max_per_user :]
        if current:
            self._by_user[user] = current
        else:
            self._by_user.pop(user, None)
        return list(current)

    def remove_all(self, user, call_id, cseq, now_ms):
        """``Contact: *`` with Expires: 0."""
        for binding in self.lookup(user, now_ms):
            if binding.call_id == call_id and cseq <= binding.cseq:
                raise OutOfOrder("CSeq %d not above %d" % (cseq, binding.cseq))
        self._by_user.pop(user, None)

    def lookup(self, user, now_ms):
        """Live bindings of `user`, most recently refreshed first (expired ones are dropped)."""
        bindings = self._by_user.get(user)
        if not bindings:
            return []
        live = [b for b in bindings if b.expires_at_ms > now_ms]
        if len(live) != len(bindings):
            if live:
                self._by_user[user] = live
            else:
                del self._by_user[user]
        return list(live)

    def users(self, now_ms):
        return [u for u in list(self._by_user) if self.lookup(u, now_ms)]

    def __len__(self):
        return sum(len(v) for v in self._by_user.values())


def same_contact(a, b):
    """Contact URIs compare equal per RFC 3261 19.1.4, approximated: scheme, host and the
    user part case-sensitively, parameters ignored (what real registrars do)."""
    return _contact_key(a) == _contact_key(b)


def _contact_key(uri):
    uri = uri.strip()
    if uri.startswith("<") and uri.endswith(">"):
        uri = uri[1:-1]
    scheme, _, rest = uri.partition(":")
    rest = rest.split(";", 1)[0].split("?", 1)[0]
    userinfo, at, hostport = rest.rpartition("@")
    user = userinfo.split(":", 1)[0] if at else ""
    return scheme.lower(), user, hostport.lower()
