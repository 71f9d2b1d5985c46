# voip.sip.model: the Request and Response objects (header list, body, typed views of Via,
# From, To, CSeq) and the standard reason phrases. voip.sip.message parses into them and
# re-exports everything here; import from there. MIT licence.
from .headers import CANONICAL, LIST_HEADERS, NameAddr, Via, canonical_name
from .syntax import SipError, is_token, parse_uint, split_list
from .uri import Uri

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


_MAX_CSEQ = const(0x7FFFFFFF)  # RFC 3261 8.1.1.5: CSeq must be less than 2**31


REASONS = {
    100: "Trying", 180: "Ringing", 181: "Call Is Being Forwarded", 182: "Queued",
    183: "Session Progress", 200: "OK", 202: "Accepted", 300: "Multiple Choices",
    301: "Moved Permanently", 302: "Moved Temporarily", 305: "Use Proxy",
    380: "Alternative Service", 400: "Bad Request", 401: "Unauthorized",
    402: "Payment Required", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
    406: "Not Acceptable", 407: "Proxy Authentication Required", 408: "Request Timeout",
    410: "Gone", 413: "Request Entity Too Large", 414: "Request-URI Too Long",
    415: "Unsupported Media Type", 416: "Unsupported URI Scheme", 420: "Bad Extension",
    421: "Extension Required", 423: "Interval Too Brief", 480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist", 482: "Loop Detected", 483: "Too Many Hops",
    484: "Address Incomplete", 485: "Ambiguous", 486: "Busy Here", 487: "Request Terminated",
    488: "Not Acceptable Here", 491: "Request Pending", 493: "Undecipherable",
    500: "Server Internal Error", 501: "Not Implemented", 502: "Bad Gateway",
    503: "Service Unavailable", 504: "Server Time-out", 505: "Version Not Supported",
    513: "Message Too Large", 600: "Busy Everywhere", 603: "Decline",
    604: "Does Not Exist Anywhere", 606: "Not Acceptable",
}


def _check_value(value):
    value = str(value)
    if "\n" in value or "\r" in value:
        raise SipError("header value contains a line break")
    return value


class _Message:
    """What requests and responses share: the header list, the body and their accessors.

    `headers` is an ordered list of (name, value) with known names in canonical spelling
    (compact forms expanded) and unknown ones as written; lookups ignore case.
    """

    def __init__(self, headers=None, body=b""):
        self.headers = []
        if isinstance(body, str):
            body = body.encode()
        self.body = bytes(body) if body else b""
        self._parsed = {}
        if headers:
            for name, value in headers:
                self.headers.append((canonical_name(name), _check_value(value)))

    # -- header access -------------------------------------------------------------------

    def _matcher(self, name):
        # Known headers are stored canonically, so a plain comparison finds them; unknown
        # ones were stored as written and need a case-insensitive one.
        key = canonical_name(name)
        low = key.lower()
        return key, (low if low not in CANONICAL else None)

    def _values(self, name):
        key, low = self._matcher(name)
        if low is None:
            return [v for n, v in self.headers if n == key]
        return [v for n, v in self.headers if n.lower() == low]

    def get(self, name, default=None):
        """The first value of header `name` (any case, compact forms too), or default.

        For list headers (Via, Route, Contact, Allow...) that is the first list element, so
        get("Via") is the top Via even when one line carries several."""
        values = self._values(name)
        if not values:
            return default
        key = canonical_name(name)
        if key in LIST_HEADERS:
            for v in values:
                for item in split_list(v):
                    if item:
                        return item
            return default
        return values[0]

    def get_all(self, name):
        """Every value of header `name` in order; list headers split at commas outside quotes
        and <> (empty elements dropped), so "Via: a, b" + "Via: c" gives [a, b, c]."""
        values = self._values(name)
        if canonical_name(name) not in LIST_HEADERS:
            return values
        out = []
        for v in values:
            for item in split_list(v):
                if item:
                    out.append(item)
        return out

    def set(self, name, value):
        """Replace every `name` header with one line holding value (where the first was)."""
        key, low = self._matcher(name)
        value = _check_value(value)
        out, done = [], False
        for n, v in self.headers:
            if n == key or (low is not None and n.lower() == low):
                if not done:
                    out.append((key, value))
                    done = True
            else:
                out.append((n, v))
        if not done:
            out.append((key, value))
        self.headers = out
        self._parsed = {}

    def add(self, name, value):
        """Append a `name` header line after all the others."""
        self.headers.append((canonical_name(name), _check_value(value)))
        self._parsed = {}

    def insert(self, name, value):
        """Prepend a `name` header line: before the first line of that name if there is one
        (a proxy's or client transaction's new top Via), else at the top."""
        key, low = self._matcher(name)
        i = 0
        for i, (n, _) in enumerate(self.headers):  # noqa: B007 - i is used after the loop
            if n == key or (low is not None and n.lower() == low):
                break
        else:
            i = 0
        self.headers.insert(i, (key, _check_value(value)))
        self._parsed = {}

    def remove(self, name):
        """Remove every `name` header line."""
        key, low = self._matcher(name)
        self.headers = [
            (n, v)
            for n, v in self.headers
            if not (n == key or (low is not None and n.lower() == low))
        ]
        self._parsed = {}

    # -- structured views (parsed once, forgotten when headers change) -------------------

    def _cached(self, key, build):
        v = self._parsed.get(key)
        if v is None:
            v = build()
            self._parsed[key] = v
        return v

    @property
    def call_id(self):
        """The Call-ID value, or None when absent."""
        return self.get("Call-ID")

    @property
    def cseq(self):
        """(number, method) from CSeq; SipError if absent or malformed."""
        return self._cached("cseq", lambda: _parse_cseq(self.get("CSeq")))

    @property
    def from_addr(self):
        """From as a NameAddr (SipError if absent or malformed)."""
        return self._cached("from", lambda: _parse_addr(self.get("From"), "From"))

    @property
    def to_addr(self):
        """To as a NameAddr (SipError if absent or malformed)."""
        return self._cached("to", lambda: _parse_addr(self.get("To"), "To"))

    @property
    def from_tag(self):
        return self.from_addr.params.get("tag")

    @property
    def to_tag(self):
        return self.to_addr.params.get("tag")

    @property
    def top_via(self):
        """The topmost Via as a Via object (SipError if absent or malformed)."""
        return self._cached("via", lambda: _parse_via(self.get("Via")))

    @property
    def content_type(self):
        """The media type of Content-Type, lowercased and without parameters, or None."""
        v = self.get("Content-Type")
        return v.partition(";")[0].strip().lower() if v else None

    # -- serialization -------------------------------------------------------------------

    def serialize(self):
        """The wire form: start line, headers, Content-Length recomputed from the body (and
        written last), empty line, body. CRLF line ends."""
        out = [self._start_line(), "\r\n"]
        for name, value in self.headers:
            if name != "Content-Length":
                out.append(name)
                out.append(": ")
                out.append(value)
                out.append("\r\n")
        out.append("Content-Length: %d\r\n\r\n" % len(self.body))
        return "".join(out).encode() + self.body

    def __bytes__(self):
        # CPython only: MicroPython's bytes() does not call __bytes__, so shared code calls
        # serialize().
        return self.serialize()


class Request(_Message):
    """A SIP request: `method` (str, case-sensitive), `uri` (str, the Request-URI as written),
    `headers`, `body` (bytes). Request(method, uri, headers=None, body=b"")."""

    is_request = True

    def __init__(self, method, uri, headers=None, body=b""):
        _Message.__init__(self, headers, body)
        self.method = method
        self.uri = str(uri)

    @property
    def request_uri(self):
        """The Request-URI parsed as a Uri (SipError if it is not a URI)."""
        return self._cached("ruri", lambda: Uri.parse(self.uri))

    def _start_line(self):
        return self.method + " " + self.uri + " SIP/2.0"

    def __repr__(self):
        return "<Request %s %s>" % (self.method, self.uri)


class Response(_Message):
    """A SIP response: `status` (int), `reason` (str), `headers`, `body` (bytes).
    Response(status, reason=None, headers=None, body=b""); reason defaults from REASONS."""

    is_request = False

    def __init__(self, status, reason=None, headers=None, body=b""):
        _Message.__init__(self, headers, body)
        self.status = status
        self.reason = reason if reason is not None else REASONS.get(status, "")

    def _start_line(self):
        return "SIP/2.0 %d %s" % (self.status, self.reason)

    def __repr__(self):
        return "<Response %d %s>" % (self.status, self.reason)


def _parse_cseq(value):
    if value is None:
        raise SipError("missing CSeq")
    words = value.split()
    if len(words) != 2:
        raise SipError("malformed CSeq " + repr(value))
    n = parse_uint(words[0], _MAX_CSEQ)
    if n is None:
        raise SipError("CSeq number out of range")
    if not is_token(words[1]):
        raise SipError("bad CSeq method")
    return (n, words[1])


def _parse_addr(value, name):
    if value is None:
        raise SipError("missing " + name)
    try:
        return NameAddr.parse(value)
    except SipError as e:
        raise SipError("bad %s header: %s" % (name, e)) from None


def _parse_via(value):
    if value is None:
        raise SipError("missing Via")
    try:
        return Via.parse(value)
    except SipError as e:
        raise SipError("bad Via header: %s" % e) from None
