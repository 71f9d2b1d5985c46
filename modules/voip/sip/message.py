# voip.sip.message: SIP requests and responses (RFC 3261 7, 8.2, 18.3, 20): parse a UDP
# datagram into a Request or Response, serialize one back (Request/Response live in
# voip.sip.model and are re-exported here), and the checks a user agent makes before acting
# on a request. MIT licence.
#
# parse() is strict about what every later layer relies on (start line, Via, From, To,
# Call-ID, CSeq, Max-Forwards, Content-Length framing) so a message it returns can be used
# without further checks, and raises SipError naming the problem otherwise. What depends on
# the element's role (URI schemes it serves, extensions, body types) is in validate_request().
import binascii
import os

from .headers import CANONICAL, NameAddr, Via
from .model import REASONS, Request, Response, _parse_via
from .syntax import SipError, is_token, parse_uint, split_list
from .uri import Uri

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


__all__ = (
    "MAX_MESSAGE_SIZE", "MAX_BODY_SIZE", "MAX_HEADERS", "MAX_HEADER_LENGTH", "REASONS",
    "SipError", "Uri", "NameAddr", "Via", "Request", "Response", "parse", "response_for",
    "validate_request", "validate_response", "unsupported_options", "new_branch", "new_tag",
    "new_call_id",
)

MAX_MESSAGE_SIZE = const(16384)  # whole datagram; larger -> 513 Message Too Large
MAX_BODY_SIZE = const(8192)  # body; larger -> 413 Request Entity Too Large
MAX_HEADERS = const(100)  # header fields after unfolding; more -> 513
MAX_HEADER_LENGTH = const(2048)  # one unfolded header field; longer -> 513
_BRANCH_MAGIC = "z9hG4bK"

# Headers a message must carry exactly once (RFC 3261 8.1.1; 4475 3.3.1 and 3.3.8).
_SINGLE = ("Call-ID", "CSeq", "From", "To")


# -- parsing ---------------------------------------------------------------------------------


def _find_header_end(data, start):
    """(end of header section, start of body): the first empty line, CRLF or bare LF."""
    crlf = data.find(b"\r\n\r\n", start)
    lf = data.find(b"\n\n", start)
    if crlf >= 0 and (lf < 0 or crlf < lf):
        return crlf, crlf + 4
    if lf >= 0:
        return lf, lf + 2
    # No empty line: over UDP the datagram is the message, so the header section runs to
    # its end and there is no body (RFC 4475 baddn.dat and RFC 5118 4.10 arrive like this).
    end = len(data)
    while end > start and data[end - 1] in (10, 13):
        end -= 1
    return end, len(data)


def _start_line(line):
    """Build an empty Request or Response from the start line (RFC 3261 7.1, 7.2)."""
    if line.startswith("SIP/"):
        version, _, rest = line.partition(" ")
        if version.upper() != "SIP/2.0":
            raise SipError("unsupported SIP version " + version, 505)
        code, _, reason = rest.partition(" ")
        status = parse_uint(code, 699) if len(code) == 3 else None
        if status is None or status < 100:
            raise SipError("bad status code " + repr(code[:12]))
        return Response(status, reason)
    parts = line.split(" ")
    if len(parts) != 3:
        # LWS inside the Request-URI, doubled or trailing SP, no version (4475 3.1.2.8-10)
        raise SipError("malformed Request-Line")
    method, uri, version = parts
    if version.upper() != "SIP/2.0":
        if version.upper().startswith("SIP/"):
            raise SipError("unsupported SIP version " + version, 505)
        raise SipError("malformed Request-Line")
    if not is_token(method):
        raise SipError("bad method")
    try:
        Uri.parse(uri)
    except SipError as e:
        raise SipError("bad Request-URI: %s" % e) from None
    return Request(method, uri)


def _header_field(field, headers):
    colon = field.find(":")
    if colon < 0:
        raise SipError("header line without ':'")
    name = field[:colon].rstrip(" \t")
    canonical = CANONICAL.get(name.lower())
    if canonical is None:
        if not is_token(name):
            raise SipError("bad header name " + repr(name[:40]))
        canonical = name
    if len(headers) >= MAX_HEADERS:
        raise SipError("more than %d header fields" % MAX_HEADERS, 513)
    headers.append((canonical, field[colon + 1 :].strip()))


def _split_headers(head):
    """Start line and (name, value) list from the decoded header section, unfolding
    continuation lines (a line starting with SP or HTAB continues the previous field)."""
    pos, n = 0, len(head)
    headers = []
    start_line = None
    field = None
    while pos < n:
        i = head.find("\n", pos)
        if i < 0:
            i = n
        line = head[pos:i]
        pos = i + 1
        if line.endswith("\r"):
            line = line[:-1]
        if not line:
            continue
        if "\r" in line:
            # A lone CR would become a line break for the next parser that reads a value we
            # copy (response_for copies Via/From/To): refuse it here.
            raise SipError("bare CR inside a header line")
        if start_line is None:
            start_line = line
            if line[0] == " " or line[0] == "\t":
                raise SipError("start line begins with whitespace")
            continue
        if line[0] == " " or line[0] == "\t":
            if field is None:
                raise SipError("continuation line before any header")
            field = field + " " + line.strip()
        else:
            if field is not None:
                _header_field(field, headers)
            field = line
        if len(field) > MAX_HEADER_LENGTH:
            raise SipError("header field longer than %d bytes" % MAX_HEADER_LENGTH, 513)
    if field is not None:
        _header_field(field, headers)
    if start_line is None:
        raise SipError("empty message")
    return start_line, headers


def _frame_body(msg, data, body_start):
    """The body by Content-Length (RFC 3261 18.3); over UDP bytes after it are ignored and
    without it the body is the rest of the datagram."""
    available = len(data) - body_start
    lengths = msg._values("Content-Length")
    if not lengths:
        length = available
    else:
        for v in lengths:
            if v != lengths[0]:
                raise SipError("conflicting Content-Length headers")  # 4475 3.3.9
        length = parse_uint(lengths[0], 99999999)
        if length is None:
            raise SipError("bad Content-Length " + repr(lengths[0][:20]))  # e.g. -999
        if length > available:
            raise SipError("Content-Length larger than body")
    if length > MAX_BODY_SIZE:
        raise SipError("body larger than %d bytes" % MAX_BODY_SIZE, 413)
    return bytes(data[body_start : body_start + length]) if length else b""


def _check_fields(msg):
    """Reject what no element can process: missing or repeated Call-ID/CSeq/From/To, a
    CSeq out of range or naming another method, broken Via, From, To or Max-Forwards."""
    for name in _SINGLE:
        count = 0
        for n, _ in msg.headers:
            if n == name:
                count += 1
        if count == 0:
            raise SipError("missing " + name)
        if count > 1:
            raise SipError("more than one " + name)
    if len(msg.call_id.split()) != 1:
        raise SipError("malformed Call-ID")
    number, method = msg.cseq
    if msg.is_request and method != msg.method:
        raise SipError("CSeq method does not match the Request-Line")
    if msg.from_addr is None or msg.to_addr is None:  # parsing them raises when malformed
        raise SipError("missing From or To")
    vias = msg._values("Via")
    if not vias:
        raise SipError("missing Via")
    for line in vias:
        for item in split_list(line):
            if not item:
                raise SipError("empty Via value")
            _parse_via(item)
    for v in msg._values("Max-Forwards"):
        if parse_uint(v, 255) is None:
            raise SipError("bad Max-Forwards")


def parse(data):
    """Parse one SIP message from a UDP datagram (bytes, bytearray, memoryview; a str is
    UTF-8 encoded first).

    Returns a Request or Response, or raises SipError whose `.status` is the response to
    answer with (400 and the problem named, 505 version, 513 too large, 413 body too large).
    Leading CRLFs (keep-alives) are skipped; bytes after Content-Length are ignored.
    """
    if isinstance(data, str):
        data = data.encode()
    n = len(data)
    if n > MAX_MESSAGE_SIZE:
        raise SipError("message larger than %d bytes" % MAX_MESSAGE_SIZE, 513)
    start = 0
    while start < n and data[start] in (10, 13):
        start += 1
    if start == n:
        raise SipError("empty message")
    if not isinstance(data, bytes):
        data = bytes(data)
    head_end, body_start = _find_header_end(data, start)
    try:
        head = data[start:head_end].decode()
    except UnicodeError:
        raise SipError("header section is not UTF-8") from None
    line, headers = _split_headers(head)
    msg = _start_line(line)
    msg.headers = headers
    msg.body = _frame_body(msg, data, body_start)
    _check_fields(msg)
    return msg


# -- what a user agent checks and builds ------------------------------------------------------


def unsupported_options(msg, supported=()):
    """The Require option tags not in `supported` (for a 420 response's Unsupported)."""
    return [tag for tag in msg.get_all("Require") if tag.lower() not in supported]


def _accepts(msg, media):
    # RFC 3261 20.1: Accept lists types, possibly with wildcards; absent means application/sdp.
    accept = msg.get_all("Accept")
    if not accept:
        return True
    major = media.partition("/")[0]
    for item in accept:
        t = item.partition(";")[0].strip().lower()
        if t == media or t == "*/*" or t == major + "/*":
            return True
    return False


def validate_request(msg, schemes=("sip", "sips"), supported=(), accept=("application/sdp",)):
    """What a user agent server should answer before processing a parsed request, or None.

    Returns (status, reason) following RFC 3261 8.2.2-8.2.3: 416 for a Request-URI scheme
    not in `schemes`, 400 for a Request-URI with headers or a malformed Contact (and, on
    REGISTER, a To that is not a SIP/SIPS URI), 420 for a Require option not in `supported`
    (see unsupported_options), 415 for a body whose Content-Type is not in `accept`, 406 for
    an INVITE whose Accept excludes application/sdp. Method checks (405/501) are the UA's.
    """
    uri = msg.request_uri
    if uri.scheme not in schemes:
        return (416, REASONS[416])
    if uri.headers:
        return (400, "Request-URI Has Headers")
    for value in msg.get_all("Contact"):
        if value == "*" and msg.method == "REGISTER":
            continue
        try:
            NameAddr.parse(value)
        except SipError:
            return (400, "Bad Contact Header")
    if msg.method == "REGISTER" and msg.to_addr.uri.scheme not in ("sip", "sips"):
        return (400, "To Is Not A SIP URI")
    if msg.method != "ACK" and msg.method != "CANCEL" and unsupported_options(msg, supported):
        return (420, REASONS[420])
    if msg.body and msg.method != "ACK":
        ctype = msg.content_type
        if ctype is None:
            return (400, "Missing Content-Type")
        if ctype not in accept:
            return (415, REASONS[415])
    if msg.method == "INVITE" and not _accepts(msg, "application/sdp"):
        return (406, REASONS[406])
    return None


def validate_response(msg):
    """Why a user agent client must discard a parsed response, or None.

    RFC 3261 8.1.3.3: a response with more than one Via is discarded (4475 3.3.10 bcast).
    """
    if len(msg.get_all("Via")) != 1:
        return "response with more than one Via"
    return None


def response_for(request, status, reason=None, to_tag=None):
    """A response to `request` as RFC 3261 8.2.6.2 builds it: every Via (same order), From,
    To (with `to_tag` added unless To already has a tag, and never on 100), Call-ID, CSeq, and
    Timestamp on 100 Trying. The caller adds Contact, Allow, body... as needed."""
    headers = []
    for name, value in request.headers:
        if name == "Via":
            headers.append((name, value))
    to = request.get("To")
    if to is not None and to_tag and status > 100:
        try:
            has_tag = request.to_tag is not None
        except SipError:
            has_tag = True
        if not has_tag:
            to = to + ";tag=" + to_tag
    for name, value in (("From", request.get("From")), ("To", to),
                        ("Call-ID", request.call_id), ("CSeq", request.get("CSeq"))):
        if value is not None:
            headers.append((name, value))
    if status == 100:
        stamp = request.get("Timestamp")
        if stamp is not None:
            headers.append(("Timestamp", stamp))
    return Response(status, reason, headers)


# -- identifiers -------------------------------------------------------------------------------


def _random_hex(nbytes):
    return binascii.hexlify(os.urandom(nbytes)).decode()


def new_branch():
    """A Via branch: the RFC 3261 magic cookie "z9hG4bK" and 64 random bits."""
    return _BRANCH_MAGIC + _random_hex(8)


def new_tag():
    """A From/To tag: 64 random bits in hex."""
    return _random_hex(8)


def new_call_id(host):
    """A Call-ID: 96 random bits in hex, "@" and the host (RFC 3261 8.1.1.4)."""
    return _random_hex(12) + "@" + host
