# voip.sip.headers: header names (canonical spellings, compact forms, which headers are
# comma-separated lists) and the structured header values every element needs: name-addr /
# addr-spec (From, To, Contact, Route, Record-Route) and Via. MIT licence.
from .syntax import (
    SipError,
    end_of_quote,
    format_params,
    is_token,
    parse_params,
    quote,
    unquote,
)
from .uri import Uri, _parse_host, format_host

# Lowercase spelling (long or compact form) -> canonical name. Unknown headers keep the
# spelling they arrived with and are matched case-insensitively. Written out rather than built
# from a list at import: keys and values are then interned constants, not ~180 heap strings
# (about 5 KB of a 64-bit port's heap; the compact forms come first).
CANONICAL = {
    "a": "Accept-Contact", "b": "Referred-By", "c": "Content-Type", "d": "Request-Disposition",
    "e": "Content-Encoding", "f": "From", "i": "Call-ID", "j": "Reject-Contact", "k": "Supported",
    "l": "Content-Length", "m": "Contact", "n": "Identity-Info", "o": "Event", "r": "Refer-To",
    "s": "Subject", "t": "To", "u": "Allow-Events", "v": "Via", "x": "Session-Expires",
    "y": "Identity", "accept": "Accept", "accept-contact": "Accept-Contact",
    "accept-encoding": "Accept-Encoding", "accept-language": "Accept-Language",
    "alert-info": "Alert-Info", "allow": "Allow", "allow-events": "Allow-Events",
    "authentication-info": "Authentication-Info", "authorization": "Authorization",
    "call-id": "Call-ID", "call-info": "Call-Info", "contact": "Contact",
    "content-disposition": "Content-Disposition", "content-encoding": "Content-Encoding",
    "content-language": "Content-Language", "content-length": "Content-Length",
    "content-type": "Content-Type", "cseq": "CSeq", "date": "Date", "error-info": "Error-Info",
    "event": "Event", "expires": "Expires", "from": "From", "history-info": "History-Info",
    "identity": "Identity", "identity-info": "Identity-Info", "in-reply-to": "In-Reply-To",
    "max-forwards": "Max-Forwards", "mime-version": "MIME-Version", "min-expires": "Min-Expires",
    "min-se": "Min-SE", "organization": "Organization",
    "p-asserted-identity": "P-Asserted-Identity", "p-associated-uri": "P-Associated-URI",
    "p-preferred-identity": "P-Preferred-Identity", "path": "Path", "priority": "Priority",
    "privacy": "Privacy", "proxy-authenticate": "Proxy-Authenticate",
    "proxy-authorization": "Proxy-Authorization", "proxy-require": "Proxy-Require",
    "rack": "RAck", "reason": "Reason", "record-route": "Record-Route", "refer-to": "Refer-To",
    "referred-by": "Referred-By", "reject-contact": "Reject-Contact", "replaces": "Replaces",
    "reply-to": "Reply-To", "request-disposition": "Request-Disposition", "require": "Require",
    "retry-after": "Retry-After", "route": "Route", "rseq": "RSeq",
    "security-client": "Security-Client", "security-server": "Security-Server",
    "security-verify": "Security-Verify", "server": "Server", "service-route": "Service-Route",
    "session-expires": "Session-Expires", "subject": "Subject",
    "subscription-state": "Subscription-State", "supported": "Supported",
    "timestamp": "Timestamp", "to": "To", "unsupported": "Unsupported",
    "user-agent": "User-Agent", "via": "Via", "warning": "Warning",
    "www-authenticate": "WWW-Authenticate",
}

# Headers whose value is a comma-separated list (RFC 3261 7.3.1): several lines and several
# values in one line are equivalent. Authorization & co. are not lists: their params use ','.
LIST_HEADERS = {
    "Accept": True, "Accept-Contact": True, "Accept-Encoding": True, "Accept-Language": True,
    "Alert-Info": True, "Allow": True, "Allow-Events": True, "Call-Info": True,
    "Contact": True, "Content-Encoding": True, "Content-Language": True, "Error-Info": True,
    "History-Info": True, "In-Reply-To": True, "P-Asserted-Identity": True,
    "P-Associated-URI": True, "P-Preferred-Identity": True, "Path": True,
    "Proxy-Require": True, "Reason": True, "Record-Route": True, "Reject-Contact": True,
    "Require": True, "Route": True, "Security-Client": True, "Security-Server": True,
    "Security-Verify": True, "Service-Route": True, "Supported": True, "Unsupported": True,
    "Via": True, "Warning": True,
}


def canonical_name(name):
    """The canonical spelling of a header name ("i" -> "Call-ID", "cseq" -> "CSeq"), or the
    name unchanged when it is not a header this stack knows."""
    return CANONICAL.get(name.lower(), name)


class NameAddr:
    """A name-addr or addr-spec with header parameters: From, To, Contact, Route, Refer-To...

    `display` (str without quotes, or None), `uri` (Uri), `params` (dict: tag, expires, q...,
    lowercase names; quoted values keep their quotes). In the addr-spec form (no <>) every
    ';' after the URI starts a header parameter (RFC 3261 20.10), so "sip:a@b;tag=1" has a
    tag and a URI without parameters.
    """

    def __init__(self, uri, display=None, params=None):
        self.uri = uri
        self.display = display
        self.params = params if params is not None else {}
        self._order = []

    @staticmethod
    def parse(s):
        """Parse one address (not a comma list); raises SipError with the problem named."""
        s = s.strip()
        if not s:
            raise SipError("empty address")
        display = None
        if s[0] == '"':
            end = end_of_quote(s, 0)
            display = unquote(s[:end])
            rest = s[end:].lstrip()
            if not rest.startswith("<"):
                raise SipError("quoted display name without <URI>")
        else:
            lt = s.find("<")
            if lt >= 0:
                words = s[:lt].split()
                for w in words:
                    if not is_token(w):
                        # "Bell, Alexander <sip:...>" (RFC 4475 3.1.2.15)
                        raise SipError("display name %r must be quoted" % s[:lt].strip())
                display = " ".join(words) if words else None
                rest = s[lt:]
            else:
                rest = None
        if rest is not None:
            gt = rest.find(">")
            if gt < 0:
                raise SipError("unterminated <URI>")
            text = rest[1:gt]
            if text != text.strip():
                raise SipError("whitespace inside <URI>")  # "< sip:a@b >" (4475 3.1.2.14)
            uri = Uri.parse(text)
            tail = rest[gt + 1 :]
        else:
            semi = s.find(";")
            text = s if semi < 0 else s[:semi]
            tail = "" if semi < 0 else s[semi:]
            if "?" in text or "," in text:
                # RFC 3261 20: a URI with '?' or ',' must be enclosed in <> (4475 3.1.2.13)
                raise SipError("addr-spec with headers must be enclosed in <>")
            uri = Uri.parse(text.strip())
        addr = NameAddr(uri, display)
        addr.params = parse_params(tail, addr._order)
        return addr

    @property
    def tag(self):
        return self.params.get("tag")

    def __str__(self):
        head = quote(self.display) + " " if self.display else ""
        return head + "<" + str(self.uri) + ">" + format_params(self.params, self._order)

    def __repr__(self):
        return "NameAddr(%r)" % str(self)


class Via:
    """One Via value: `transport` (uppercase), `host` (IPv6 without brackets), `port` (int or
    None), `params` (dict: branch, rport, received, maddr, ttl...; a flag maps to None)."""

    def __init__(self, host, port=None, transport="UDP", params=None):
        self.transport = transport
        self.host = host
        self.port = port
        self.params = params if params is not None else {}
        self._order = []

    @staticmethod
    def parse(s):
        """Parse "SIP/2.0/UDP host:port;branch=..." (LWS allowed around '/', ':', ';', '=')."""
        semi = s.find(";")
        head = s if semi < 0 else s[:semi]
        parts = head.split("/")
        if len(parts) != 3:
            raise SipError("malformed Via " + repr(s.strip()))
        if parts[0].strip().upper() != "SIP" or parts[1].strip() != "2.0":
            raise SipError("Via protocol is not SIP/2.0")
        words = parts[2].split()
        if len(words) < 2:
            raise SipError("Via without sent-by")
        transport = words[0].upper()
        if not is_token(transport):
            raise SipError("bad Via transport")
        host, port = _parse_host("".join(words[1:]))
        via = Via(host, port, transport)
        via.params = parse_params("" if semi < 0 else s[semi:], via._order)
        return via

    @property
    def branch(self):
        return self.params.get("branch")

    @property
    def received(self):
        return self.params.get("received")

    @property
    def rport(self):
        """The rport value as an int, or None (absent, or present without a value)."""
        v = self.params.get("rport")
        return int(v) if v and v.isdigit() and len(v) < 6 else None

    def sent_by(self, default_port=5060):
        """(host, port) the sender named in this Via (RFC 3261 18.2.2 before rport/received)."""
        return (self.host, self.port if self.port is not None else default_port)

    def __str__(self):
        return "SIP/2.0/%s %s%s" % (
            self.transport,
            format_host(self.host, self.port),
            format_params(self.params, self._order),
        )

    def __repr__(self):
        return "Via(%r)" % str(self)
