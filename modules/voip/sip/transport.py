# voip.sip.transport: RFC 3261 section 18 over UDP: where responses go (Via received/rport,
# RFC 3581) and the error response to a request too broken to parse. MIT licence.
"""Transport-layer rules shared by the transaction layer and the user agent.

    mark_received(request, source) -> Via    # 18.2.1: received= / rport= on the top Via
    response_address(via, source) -> (host, port)   # 18.2.2 + RFC 3581: always the source IP
    error_response(data, error) -> Response or None  # a 400/505 for what parse() refused
"""

from voip.sip.headers import canonical_name
from voip.sip.message import MAX_MESSAGE_SIZE, REASONS, Response, SipError, Via


def response_address(via, source):
    """Where responses to a request whose top Via is `via` (a Via or its text) go.

    RFC 3261 18.2.2 with RFC 3581: to the `received` address (the source IP: mark_received
    adds it whenever sent-by differs) and to the source port when the request asked for
    rport, else to the sent-by port. So always to the source IP, never to a third party.
    """
    if via is None:
        return source
    try:
        if not isinstance(via, Via):
            via = Via.parse(via)
    except (SipError, ValueError):
        return source
    if "rport" in via.params:
        return source
    return (source[0], via.port or 5060)


def mark_received(request, source):
    """RFC 3261 18.2.1 and RFC 3581: add received= and rport= to the top Via. Returns the Via."""
    vias = request.get_all("Via")
    via = Via.parse(vias[0])
    changed = False
    if via.host != source[0]:
        via.params["received"] = source[0]
        changed = True
    if "rport" in via.params and not via.params["rport"]:
        via.params["rport"] = str(source[1])
        via.params["received"] = source[0]
        changed = True
    if changed:
        vias[0] = str(via)
        request.remove("Via")
        for i in range(len(vias) - 1, -1, -1):
            request.insert("Via", vias[i])
    return via


# What a response needs to reach the client and match its transaction (RFC 3261 8.2.6.2).
_SALVAGED = ("Via", "From", "To", "Call-ID", "CSeq")


def error_response(data, error):
    """The response (400, 505, 513...) to a request parse() rejected, or None.

    RFC 3261 and RFC 4475 want an error response where one can be built. This is not a
    parser: it copies the raw Via, From, To, Call-ID and CSeq lines of the datagram into a
    Response with `error.status`, and gives up (None: drop it) on a response, on bytes that
    are not text, or without a Via and a CSeq to route and match it by.
    """
    try:
        text = bytes(data[:MAX_MESSAGE_SIZE]).decode()
    except (UnicodeError, TypeError, ValueError):
        return None
    text = text.lstrip("\r\n")
    end = text.find("\n\r\n")
    if end < 0:
        end = text.find("\n\n")
    lines = (text if end < 0 else text[:end]).split("\n")
    if not lines or lines[0].startswith("SIP/"):
        return None
    headers = []
    last = None
    for line in lines[1:]:
        line = line.rstrip("\r")
        if line[:1] == " " or line[:1] == "\t":
            if last is not None:  # folded continuation of a salvaged header
                name, value = headers[last]
                headers[last] = (name, value + " " + line.strip())
            continue
        last = None
        name, colon, value = line.partition(":")
        if not colon:
            continue
        name = canonical_name(name.strip())
        if name not in _SALVAGED:
            continue
        if name != "Via" and _has(headers, name):
            continue  # a field repeated where one is allowed: keep the first
        last = len(headers)
        headers.append((name, value.strip()))
    if not _has(headers, "Via") or not _has(headers, "CSeq"):
        return None
    status = getattr(error, "status", 400)
    try:
        return Response(status, _reason(status, error), headers)
    except (SipError, ValueError):
        return None


def _has(headers, name):
    return any(n == name for n, _ in headers)


def _reason(status, error):
    # The reason phrase says what was wrong (RFC 4475 asks for it), in plain printable ASCII.
    text = str(error)
    out = []
    for ch in text[:64]:
        out.append(ch if " " <= ch <= "~" else "?")
    return "".join(out) or REASONS.get(status, "Bad Request")
