# voip.sip.uri: SIP, SIPS and tel URIs (RFC 3261 19.1, RFC 3966) with parameters, headers and
# %-escapes; any other scheme is kept as an opaque absoluteURI. MIT licence.
from .syntax import (
    HEADER_CHARS,
    PARAM_CHARS,
    PASSWORD_CHARS,
    USER_CHARS,
    SipError,
    escape,
    is_alnum,
    ordered_keys,
    parse_uint,
    unescape,
)

# URI parameters whose presence in one URI but not the other makes them differ (19.1.4).
_MUST_MATCH = ("user", "ttl", "method", "maddr", "transport")


def _check_scheme(scheme):
    # scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
    if not scheme or not ("a" <= scheme[0] <= "z"):
        raise SipError("bad URI scheme " + repr(scheme))
    for c in scheme:
        if not (is_alnum(c) or c in "+-."):
            raise SipError("bad URI scheme " + repr(scheme))


def _check_uri_chars(s):
    # No whitespace, controls, quotes or angle brackets anywhere in a URI ("< sip:a@b >",
    # "sip:a@b; lr" and "<sip:...>" as a Request-URI all end up here).
    for c in s:
        if c <= " " or c in '<>"' or c == "\x7f":
            raise SipError("invalid character %r in URI" % c)


def _parse_host(hostport):
    """Split "host", "host:port", "[v6]" or "[v6]:port" into (host without brackets, port)."""
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            raise SipError("unterminated IPv6 reference")
        host = hostport[1:end]
        rest = hostport[end + 1 :]
        if not host:
            raise SipError("empty IPv6 reference")
        for c in host:
            # Hex digits, ':' and '.' (IPv4-mapped); RFC 5118 4.10 says tolerate ":::".
            if not (("0" <= c <= "9") or ("a" <= c <= "f") or ("A" <= c <= "F") or c in ":."):
                raise SipError("bad IPv6 reference [%s]" % host)
        if rest and rest[0] != ":":
            raise SipError("text after IPv6 reference")
        port = rest[1:] if rest else None
    else:
        host, colon, port = hostport.partition(":")
        if not colon:
            port = None
        if not host:
            raise SipError("URI has no host")
        for c in host:
            if not (is_alnum(c) or c in "-._"):
                raise SipError("bad host %r" % host)
    if port is not None:
        p = parse_uint(port, 65535)
        if p is None or p == 0:
            # "sip:2001:db8::10" (RFC 5118 4.2) fails here: an IPv6 address needs [ ].
            raise SipError("bad port %r" % port)
        port = p
    return host, port


def format_host(host, port=None):
    """host[:port], with IPv6 addresses put back in brackets."""
    h = "[" + host + "]" if ":" in host else host
    return h if port is None else h + ":" + str(port)


class Uri:
    """A parsed URI. Components are stored unescaped; str() escapes them again.

    sip/sips: `user`, `password` (or None), `host` (IPv6 without brackets), `port` (int or
    None), `params` (dict, lowercase names, value or None), `headers` (dict).
    tel: `user` is the telephone-subscriber number, `params` its parameters, host None.
    Any other scheme: only `scheme` and `opaque` (the text after "scheme:").
    """

    def __init__(self, scheme="sip", user=None, host=None, port=None, params=None,
                 headers=None, password=None, opaque=None):
        self.scheme = scheme
        self.user = user
        self.password = password
        self.host = host
        self.port = port
        self.params = params if params is not None else {}
        self.headers = headers if headers is not None else {}
        self.opaque = opaque
        self._param_order = []
        self._header_order = []

    @staticmethod
    def parse(s):
        """Parse a URI string; raises SipError on garbage (bad scheme, host, port, escapes)."""
        colon = s.find(":")
        if colon <= 0:
            raise SipError("not a URI: " + repr(s))
        scheme = s[:colon].lower()
        _check_scheme(scheme)
        _check_uri_chars(s)
        rest = s[colon + 1 :]
        uri = Uri(scheme)
        if scheme == "sip" or scheme == "sips":
            Uri._parse_sip(uri, rest)
        elif scheme == "tel":
            number, semi, params = rest.partition(";")
            if not number:
                raise SipError("tel URI without a number")
            uri.user = unescape(number)
            if semi:
                uri.params = Uri._parse_uri_params(params, uri._param_order)
        else:
            if not rest:
                raise SipError("empty URI after " + scheme)
            uri.opaque = rest
        return uri

    @staticmethod
    def _parse_sip(uri, rest):
        # The userinfo ends at the first '@': '@' may not appear unescaped anywhere else,
        # while ';', '?' and ':' can occur inside the user part (RFC 4475 3.1.1.2, 3.1.1.9).
        at = rest.find("@")
        if at >= 0:
            userinfo = rest[:at]
            rest = rest[at + 1 :]
            user, colon, password = userinfo.partition(":")
            if not user:
                raise SipError("empty user part in URI")
            uri.user = unescape(user)
            if colon:
                uri.password = unescape(password)
        rest, q, headers = rest.partition("?")
        hostport, semi, params = rest.partition(";")
        uri.host, uri.port = _parse_host(hostport)
        if semi:
            uri.params = Uri._parse_uri_params(params, uri._param_order)
        if q:
            for item in headers.split("&"):
                name, eq, value = item.partition("=")
                if not name or not eq:
                    raise SipError("bad URI header " + repr(item))
                name = unescape(name)
                uri.headers[name] = unescape(value)
                uri._header_order.append(name)

    @staticmethod
    def _parse_uri_params(params, order):
        # URI parameters are ";name[=value]" with %-escapes allowed in both parts; params is
        # the text after the first ';', so "" means a dangling ';'.
        result = {}
        for item in params.split(";"):
            if not item:
                raise SipError("empty URI parameter")
            name, eq, value = item.partition("=")
            name = unescape(name).lower()
            if not name:
                raise SipError("empty URI parameter name")
            result[name] = unescape(value) if eq else None
            order.append(name)
        return result

    def __str__(self):
        if self.scheme != "sip" and self.scheme != "sips" and self.scheme != "tel":
            return self.scheme + ":" + (self.opaque or "")
        out = [self.scheme, ":"]
        if self.scheme == "tel":
            out.append(escape(self.user or "", USER_CHARS))
        else:
            if self.user is not None:
                out.append(escape(self.user, USER_CHARS))
                if self.password is not None:
                    out.append(":" + escape(self.password, PASSWORD_CHARS))
                out.append("@")
            out.append(format_host(self.host or "", self.port))
        for k in ordered_keys(self.params, self._param_order):
            v = self.params[k]
            out.append(";" + escape(k, PARAM_CHARS))
            if v is not None:
                out.append("=" + escape(v, PARAM_CHARS))
        if self.headers:
            sep = "?"
            for k in ordered_keys(self.headers, self._header_order):
                value = escape(self.headers[k], HEADER_CHARS)
                out.append(sep + escape(k, HEADER_CHARS) + "=" + value)
                sep = "&"
        return "".join(out)

    def __repr__(self):
        return "Uri(%r)" % str(self)

    def __eq__(self, other):
        """URI equality as RFC 3261 19.1.4 defines it (case rules, default-less ports, the
        parameters that must match when present in either, headers all matching)."""
        if not isinstance(other, Uri) or self.scheme != other.scheme:
            return False
        if self.opaque is not None or other.opaque is not None:
            return self.opaque == other.opaque
        if self.user != other.user or self.password != other.password:
            return False
        if (self.host or "").lower() != (other.host or "").lower() or self.port != other.port:
            return False
        for k in self.params:
            if k in other.params:
                a, b = self.params[k], other.params[k]
                if (a or "").lower() != (b or "").lower() or (a is None) != (b is None):
                    return False
            elif k in _MUST_MATCH:
                return False
        for k in other.params:
            if k in _MUST_MATCH and k not in self.params:
                return False
        return self.headers == other.headers

    def __ne__(self, other):
        return not self.__eq__(other)

    def address(self, default_port=5060):
        """(host, port) to send to for this URI: maddr is not followed, the port defaults."""
        return (self.host, self.port if self.port is not None else default_port)

