# voip.sdp_description: the SDP model (RFC 8866, was RFC 4566), parsed as real peers send it.
# MIT licence.
#
# Only what a G.711 phone needs is interpreted: o=, c=, m=, and the attributes rtpmap, fmtp, ptime,
# maxptime, rtcp, rtcp-mux and the four directions. Every other attribute (ICE candidates, crypto,
# rtcp-fb, ssrc, mid, ...) is kept as a (name, value) pair and otherwise ignored. Anything we do
# interpret must be well formed: a malformed description raises ValueError naming the line, and
# no other exception type ever leaves parse().
try:
    from micropython import const
except ImportError:

    def const(x):
        return x


# Bounds: a WebRTC offer with ICE candidates and video runs to ~6 KB and ~120 lines.
_MAX_SDP_BYTES = const(16384)
_MAX_LINES = const(512)
_MAX_MEDIA = const(16)
_MAX_FORMATS = const(64)
_MAX_LINE_CHARS = const(2048)

DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
_TYPE_LETTERS = "vosiuepcbtrzkam"
_DIGITS = "0123456789"

# RFC 3551 static payload types a telephone may meet without an rtpmap line.
_STATIC_PT = {
    0: ("PCMU", 8000, 1),
    3: ("GSM", 8000, 1),
    4: ("G723", 8000, 1),
    8: ("PCMA", 8000, 1),
    9: ("G722", 8000, 1),
    13: ("CN", 8000, 1),
    18: ("G729", 8000, 1),
}


def parse_uint(text, what, limit):
    """A decimal integer 0..limit, digits only (int() would also take '+1', ' 1' and '1_0')."""
    if not text or len(text) > 20:
        raise ValueError("SDP %s is not a number: %r" % (what, text[:24]))
    for ch in text:
        if ch not in _DIGITS:
            raise ValueError("SDP %s is not a number: %r" % (what, text[:24]))
    value = int(text)
    if value > limit:
        raise ValueError("SDP %s out of range: %s" % (what, text))
    return value


def is_token(text):
    """RFC 8866 token/byte-string safety check: visible ASCII only, so echoing it cannot inject."""
    if not text:
        return False
    return all("!" <= ch <= "~" for ch in text)


def find_attribute(attributes, name):
    for attr_name, value in attributes:
        if attr_name == name:
            return True if value is None else value
    return None


class Connection:
    """A c= line (or the address part of a=rtcp): network type, address type and address."""

    def __init__(self, nettype, addrtype, address):
        self.nettype = nettype
        self.addrtype = addrtype
        self.address = address

    def is_null(self):
        """RFC 2543-style hold: the peer asks not to be sent media (RFC 3264 section 8.4)."""
        return self.address in ("0.0.0.0", "::")

    def __repr__(self):
        return "Connection(%s %s %s)" % (self.nettype, self.addrtype, self.address)


def _parse_connection(value, what):
    parts = value.split()
    if len(parts) != 3:
        raise ValueError("SDP %s needs <nettype> <addrtype> <address>" % what)
    nettype, addrtype, address = parts
    if nettype != "IN" or addrtype not in ("IP4", "IP6"):
        raise ValueError("SDP %s has unsupported network %s %s" % (what, nettype, addrtype))
    # Multicast TTL and address count (RFC 8866 section 5.7) follow a slash: unicast peers
    # don't send them, but dropping them keeps the address itself usable.
    address = address.split("/", 1)[0]
    if not is_token(address):
        raise ValueError("SDP %s has an empty address" % what)
    if addrtype == "IP4":
        octets = address.split(".")
        if len(octets) == 4:
            for octet in octets:
                parse_uint(octet, what + " address octet", 255)
        elif ":" in address:
            raise ValueError("SDP %s: IP4 with an IPv6 address %s" % (what, address))
    elif ":" not in address:
        raise ValueError("SDP %s: IP6 address without a colon: %s" % (what, address))
    return Connection(nettype, addrtype, address)


class MediaDescription:
    """One m= section. `connection` and `direction` are effective: session-level values apply
    where the section has none of its own (the session direction defaults to sendrecv)."""

    def __init__(self, media, port, port_count, proto, formats):
        self.media = media
        self.port = port
        self.port_count = port_count
        self.proto = proto
        self.formats = formats  # as sent, strings, in the offerer's preference order
        self.connection = None
        self.direction = None
        self.rtpmap = {}  # payload type -> (encoding name, clock rate, channels)
        self.fmtp = {}  # payload type -> parameter string
        self.ptime = None
        self.maxptime = None
        self.rtcp_port = None
        self.rtcp_connection = None
        self.rtcp_mux = False
        self.attributes = []  # every a= line of this section as (name, value or None)

    def is_rtp(self):
        """RTP/AVP, RTP/AVPF, RTP/SAVP, UDP/TLS/RTP/SAVPF...: formats are payload types."""
        return "RTP/" in self.proto.upper()

    def is_secure(self):
        """SRTP or DTLS profiles (RTP/SAVP, RTP/SAVPF, UDP/TLS/RTP/SAVPF): we cannot do those."""
        proto = self.proto.upper()
        return "SAVP" in proto or "TLS" in proto

    def payload_types(self):
        """The formats as RTP payload types (ints); empty for non-RTP sections."""
        if not self.is_rtp():
            return []
        return [int(fmt) for fmt in self.formats]

    def codec(self, payload_type):
        """(name, clock rate, channels) for a payload type, from rtpmap or the static table."""
        entry = self.rtpmap.get(payload_type)
        if entry is None:
            entry = _STATIC_PT.get(payload_type)
        return entry

    def attribute(self, name):
        """The value of the first a=<name> line, True for a flag, None when absent."""
        return find_attribute(self.attributes, name)

    def __repr__(self):
        return "MediaDescription(%s %d %s %s)" % (
            self.media,
            self.port,
            self.proto,
            " ".join(self.formats),
        )


def _parse_media_line(value, number):
    parts = value.split()
    if len(parts) < 3:
        raise ValueError("SDP line %d: m= needs <media> <port> <proto> <fmt>..." % number)
    media, port_text, proto = parts[0], parts[1], parts[2]
    formats = parts[3:]
    port_count = 1
    if "/" in port_text:
        port_text, count_text = port_text.split("/", 1)
        port_count = parse_uint(count_text, "m= port count", 65535)
    port = parse_uint(port_text, "m= port", 65535)
    if not is_token(media) or not is_token(proto):
        raise ValueError("SDP line %d: bad m= media or proto" % number)
    if not formats and port != 0:
        raise ValueError("SDP line %d: m= has no formats" % number)
    if len(formats) > _MAX_FORMATS:
        raise ValueError("SDP line %d: m= has more than %d formats" % (number, _MAX_FORMATS))
    section = MediaDescription(media, port, port_count, proto, formats)
    if section.is_rtp():
        for fmt in formats:
            parse_uint(fmt, "m= payload type", 127)
    else:
        for fmt in formats:
            if not is_token(fmt):
                raise ValueError("SDP line %d: bad m= format" % number)
    return section


def _parse_rtpmap(section, value):
    # a=rtpmap:<payload type> <encoding name>/<clock rate>[/<encoding parameters>]
    parts = value.split(None, 1)
    if len(parts) != 2:
        raise ValueError("a=rtpmap needs <payload type> <encoding>/<clock rate>")
    payload_type = parse_uint(parts[0], "rtpmap payload type", 127)
    encoding = parts[1].strip().split("/")
    if len(encoding) < 2 or len(encoding) > 3 or not is_token(encoding[0]):
        raise ValueError("a=rtpmap:%d encoding is not <name>/<rate>" % payload_type)
    rate = parse_uint(encoding[1], "rtpmap clock rate", 10000000)
    channels = 1
    if len(encoding) == 3:
        channels = parse_uint(encoding[2], "rtpmap channels", 255)
    section.rtpmap[payload_type] = (encoding[0], rate, channels)


def _parse_ptime(value, what):
    # Integer milliseconds per RFC 8866; some peers write "20.0", so a fraction is dropped.
    whole = value.strip().split(".", 1)
    if len(whole) == 2:
        parse_uint(whole[1], what + " fraction", 10**9)
    return parse_uint(whole[0], what, 10000)


def _parse_attribute(section, name, value):
    """Interpret the attributes that matter to us; the caller records every one."""
    if name in DIRECTIONS:
        section.direction = name
    elif name == "rtpmap":
        _parse_rtpmap(section, value or "")
    elif name == "fmtp":
        parts = (value or "").split(None, 1)
        if not parts:
            raise ValueError("a=fmtp needs a payload type")
        if parts[0] != "*":  # '*' is legal in some attributes; nothing of ours uses it
            pt = parse_uint(parts[0], "fmtp payload type", 127)
            section.fmtp[pt] = parts[1].strip() if len(parts) == 2 else ""
    elif name == "ptime":
        section.ptime = _parse_ptime(value or "", "a=ptime")
    elif name == "maxptime":
        section.maxptime = _parse_ptime(value or "", "a=maxptime")
    elif name == "rtcp":
        # RFC 3605: a=rtcp:<port> [<nettype> <addrtype> <connection-address>]
        parts = (value or "").split(None, 1)
        if not parts:
            raise ValueError("a=rtcp needs a port")
        section.rtcp_port = parse_uint(parts[0], "a=rtcp port", 65535)
        if len(parts) == 2:
            section.rtcp_connection = _parse_connection(parts[1], "a=rtcp")
    elif name == "rtcp-mux":
        section.rtcp_mux = True


def _decode(data):
    if isinstance(data, (bytes, bytearray, memoryview)):
        if len(data) > _MAX_SDP_BYTES:
            raise ValueError("SDP larger than %d bytes" % _MAX_SDP_BYTES)
        try:
            return bytes(data).decode("utf-8")
        except UnicodeError:
            raise ValueError("SDP is not valid UTF-8") from None
    if isinstance(data, str):
        if len(data) > _MAX_SDP_BYTES:
            raise ValueError("SDP larger than %d bytes" % _MAX_SDP_BYTES)
        return data
    raise ValueError("SDP must be bytes or str")


class SessionDescription:
    """A parsed SDP session: the o= fields, the session-level c=/direction/attributes and the
    m= sections in order (`media`)."""

    def __init__(self):
        self.origin_username = "-"
        self.session_id = 0
        self.session_version = 0
        self.origin_address = None  # a Connection
        self.session_name = "-"
        self.connection = None
        self.direction = None  # session-level a=<direction>, or None
        self.attributes = []
        self.media = []

    @classmethod
    def parse(cls, data):
        """Parse SDP from bytes or str (CRLF or LF line ends). Raises ValueError only."""
        try:
            return cls._parse(_decode(data))
        except (ValueError, MemoryError):
            raise
        except Exception as exc:  # a bug here must still surface as malformed input
            raise ValueError("SDP could not be parsed: %s" % type(exc).__name__) from None

    @classmethod
    def _parse(cls, text):
        sd = cls()
        lines = text.split("\n")
        if len(lines) > _MAX_LINES:
            raise ValueError("SDP has more than %d lines" % _MAX_LINES)
        section = None  # None while at session level
        previous = None  # the type letter of the previous line
        for number, raw in enumerate(lines, 1):
            line = raw[:-1] if raw.endswith("\r") else raw
            if not line:
                continue  # blank lines (a trailing CRLF, a stray one) carry nothing
            if len(line) > _MAX_LINE_CHARS:
                raise ValueError("SDP line %d is over %d characters" % (number, _MAX_LINE_CHARS))
            if len(line) < 2 or line[1] != "=":
                raise ValueError("SDP line %d is not <type>=<value>: %r" % (number, line[:40]))
            kind, value = line[0], line[2:]
            if kind not in _TYPE_LETTERS:
                # RFC 8866 section 5: a description with an unknown type letter is ignored whole.
                raise ValueError("SDP line %d has unknown type %r" % (number, kind))
            if previous is None:
                if kind != "v" or value.strip() != "0":
                    raise ValueError("SDP must start with v=0, not %r" % line[:40])
                previous = kind
                continue
            if previous == "v" and kind != "o":
                raise ValueError("SDP line %d must be o= (after v=), not %s=" % (number, kind))
            try:
                section = sd._parse_line(kind, value, section, number)
            except ValueError as exc:
                message = str(exc)
                if not message.startswith("SDP line"):
                    if message.startswith("SDP "):
                        message = message[4:]
                    message = "SDP line %d: %s" % (number, message)
                raise ValueError(message) from None
            previous = kind
        if previous is None:
            raise ValueError("SDP is empty")
        if previous == "v":
            raise ValueError("SDP has no o= line")
        sd._resolve()
        return sd

    def _parse_line(self, kind, value, section, number):
        if kind == "o":
            if section is not None or self.origin_address is not None:
                raise ValueError("o= must appear once, at session level")
            parts = value.split()
            if len(parts) != 6:
                raise ValueError("o= needs 6 fields, has %d" % len(parts))
            self.origin_username = parts[0]
            self.session_id = parse_uint(parts[1], "o= session id", 10**20)
            self.session_version = parse_uint(parts[2], "o= session version", 10**20)
            self.origin_address = _parse_connection(" ".join(parts[3:]), "o=")
        elif kind == "s" and section is None:
            self.session_name = value
        elif kind == "c":
            connection = _parse_connection(value, "c=")
            if section is None:
                self.connection = connection
            else:
                section.connection = connection
        elif kind == "m":
            if len(self.media) >= _MAX_MEDIA:
                raise ValueError("SDP has more than %d m= lines" % _MAX_MEDIA)
            section = _parse_media_line(value, number)
            self.media.append(section)
        elif kind == "a":
            name, sep, attr_value = value.partition(":")
            if not is_token(name):
                raise ValueError("a= has no attribute name")
            attr_value = attr_value if sep else None
            target = self if section is None else section
            target.attributes.append((name, attr_value))
            if section is None:
                if name in DIRECTIONS:
                    self.direction = name
            else:
                _parse_attribute(section, name, attr_value)
        return section

    def _resolve(self):
        """Apply session-level defaults to each m= section (RFC 8866 sections 5.7 and 6.7)."""
        for index, section in enumerate(self.media, 1):
            if section.direction is None:
                section.direction = self.direction or "sendrecv"
            if section.connection is None:
                section.connection = self.connection
            if section.connection is None and section.port != 0:
                raise ValueError(
                    "SDP m= line %d (%s) has no c= and there is no session-level c="
                    % (index, section.media)
                )

    def attribute(self, name):
        """The value of the first session-level a=<name>, True for a flag, None when absent."""
        return find_attribute(self.attributes, name)

    def __repr__(self):
        return "SessionDescription(o=%s %d %d, %d media)" % (
            self.origin_username,
            self.session_id,
            self.session_version,
            len(self.media),
        )
