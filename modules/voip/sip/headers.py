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
# spelling they arrived with and are matched case-insensitively.
_NAMES = (
    "Accept Accept-Contact Accept-Encoding Accept-Language Alert-Info Allow Allow-Events "
    "Authentication-Info Authorization Call-ID Call-Info Contact Content-Disposition "
    "Content-Encoding Content-Language Content-Length Content-Type CSeq Date Error-Info Event "
    "Expires From History-Info Identity Identity-Info In-Reply-To Max-Forwards MIME-Version "
    "Min-Expires Min-SE Organization P-Asserted-Identity P-Associated-URI P-Preferred-Identity "
    "Path Priority Privacy Proxy-Authenticate Proxy-Authorization Proxy-Require RAck Reason "
    "Record-Route Refer-To Referred-By Reject-Contact Replaces Reply-To Request-Disposition "
    "Require Retry-After Route RSeq Security-Client Security-Server Security-Verify Server "
    "Service-Route Session-Expires Subject Subscription-State Supported Timestamp To "
    "Unsupported User-Agent Via Warning WWW-Authenticate"
)
CANONICAL = {}
for _n in _NAMES.split():
    CANONICAL[_n.lower()] = _n
for _c, _n in (
    ("a", "Accept-Contact"), ("b", "Referred-By"), ("c", "Content-Type"),
    ("d", "Request-Disposition"), ("e", "Content-Encoding"), ("f", "From"), ("i", "Call-ID"),
    ("j", "Reject-Contact"), ("k", "Supported"), ("l", "Content-Length"), ("m", "Contact"),
    ("n", "Identity-Info"), ("o", "Event"), ("r", "Refer-To"), ("s", "Subject"), ("t", "To"),
    ("u", "Allow-Events"), ("v", "Via"), ("x", "Session-Expires"), ("y", "Identity"),
):
    CANONICAL[_c] = _n
del _n, _c

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
