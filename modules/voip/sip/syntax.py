# voip.sip.syntax: the lexical pieces of SIP (RFC 3261 section 25) shared by the URI, header
# and message parsers: SipError, character classes, %-escapes, quoted strings, list splitting
# and ";name=value" parameters. MIT licence.
#
# Everything is hand-written scanning with str methods both MicroPython and CPython have
# (find, split, strip, partition, lower): MicroPython's `re` lacks most of what a SIP grammar
# would need, and a scan is easier to bound.


class SipError(ValueError):
    """A message (or part of one) that cannot be accepted.

    `status` is the response a user agent would answer with when it can answer at all:
    400 (syntax; the message names the problem), 505 (SIP version), 513 (message too large),
    413 (body too large), 416 (URI scheme). Responses that raise are simply dropped.
    """

    def __init__(self, message, status=400):
        super().__init__(message)
        self.status = status

    def __str__(self):
        return self.args[0] if self.args else "SIP error"


# RFC 3261 token: alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~"
TOKEN_MARKS = "-.!%*_+`'~"
# unreserved = alphanum / mark (RFC 3261 25.1)
MARK = "-_.!~*'()"
USER_CHARS = MARK + "&=+$,;?/"  # user-unreserved
PASSWORD_CHARS = MARK + "&=+$,"
PARAM_CHARS = MARK + "[]/:&+$"  # param-unreserved
HEADER_CHARS = MARK + "[]/?:+$"  # hnv-unreserved
HEX = "0123456789abcdefABCDEF"


def is_alnum(c):
    """True for an ASCII letter or digit (MicroPython's str has no isalnum)."""
    return ("a" <= c <= "z") or ("A" <= c <= "Z") or ("0" <= c <= "9")


def is_token(s):
    """True when s is a non-empty RFC 3261 token (methods, header names, parameter names)."""
    if not s:
        return False
    for c in s:  # noqa: SIM110 - a plain loop: no generator allocation on MicroPython
        if not (is_alnum(c) or c in TOKEN_MARKS):
            return False
    return True


def parse_uint(s, limit):
    """Parse ASCII decimal digits (no sign, no spaces) into an int <= limit, or return None.

    Leading zeros are fine ("0068"). Overlong strings are refused before int() so a hostile
    value never builds a huge integer (CSeq: 36893488147419103232).
    """
    if not s or len(s) > 10:
        return None
    for c in s:
        if not ("0" <= c <= "9"):
            return None
    n = int(s)
    return n if n <= limit else None


def unescape(s):
    """Decode %HH escapes once (never recursively: "%2541" gives "%41").

    Raises SipError on a malformed escape. Escapes that do not form UTF-8 leave s as written
    (a str cannot hold them on MicroPython); %00 decodes to a NUL character.
    """
    if "%" not in s:
        return s
    out = bytearray()
    i, n = 0, len(s)
    while i < n:
        c = s[i]
        if c == "%":
            h = s[i + 1 : i + 3]
            if len(h) != 2 or h[0] not in HEX or h[1] not in HEX:
                raise SipError("invalid %-escape in " + repr(s))
            out.append(int(h, 16))
            i += 3
        else:
            out.extend(c.encode())
            i += 1
    try:
        return out.decode()
    except UnicodeError:
        return s


def escape(s, allowed):
    """%-escape every character of s that is not alphanumeric or in `allowed`."""
    for c in s:
        if not (is_alnum(c) or c in allowed):
            break
    else:
        return s  # the usual case: nothing to escape, no allocation
    out = []
    for c in s:
        if is_alnum(c) or c in allowed:
            out.append(c)
        else:
            for b in c.encode():
                out.append("%%%02X" % b)
    return "".join(out)


def quote(s):
    """A quoted-string for s: backslash before '"' and '\\'."""
    if '"' in s or "\\" in s:
        s = s.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + s + '"'


def unquote(s):
    """The content of a quoted-string s (quotes included), quoted-pairs resolved.

    Raises SipError when s is not exactly one well-formed quoted-string.
    """
    n = len(s)
    if n < 2 or s[0] != '"':
        raise SipError("expected a quoted string")
    out = []
    i = 1
    while i < n:
        c = s[i]
        if c == "\\":
            if i + 1 >= n:
                break
            out.append(s[i + 1])
            i += 2
            continue
        if c == '"':
            if i != n - 1:
                raise SipError("text after quoted string")
            return "".join(out)
        out.append(c)
        i += 1
    raise SipError("unterminated quoted string")


def end_of_quote(s, i):
    """Index just past the quoted-string starting at s[i] == '"'; SipError if unterminated."""
    n = len(s)
    i += 1
    while i < n:
        c = s[i]
        if c == "\\":
            i += 2
            continue
        if c == '"':
            return i + 1
        i += 1
    raise SipError("unterminated quoted string")


def find_unquoted(s, chars, start=0):
    """Index of the first character of s in `chars` outside quoted strings and <...>, or -1."""
    i, n = start, len(s)
    while i < n:
        c = s[i]
        if c == '"':
            i = end_of_quote(s, i)
            continue
        if c == "<":
            j = s.find(">", i)
            if j < 0:
                raise SipError("unterminated <")
            i = j + 1
            continue
        if c in chars:
            return i
        i += 1
    return -1


def split_list(value):
    """Split a comma-separated header value outside quotes and <>; items stripped, empties kept.

    "a, <sip:x;a=1,2>, \"b,c\" <sip:y>" gives three items. Never raises: after an
    unterminated quote or "<" the rest is one item, left for the structured parser of that
    header (NameAddr, Via...) to reject, so reading a header never fails.
    """
    if "," not in value:
        return [value.strip()]
    items = []
    start = 0
    while True:
        try:
            i = find_unquoted(value, ",", start)
        except SipError:
            i = -1
        if i < 0:
            items.append(value[start:].strip())
            return items
        items.append(value[start:i].strip())
        start = i + 1


def parse_params(s, order):
    """Parse ";name=value;flag..." (s starts at the first ';' or is empty) into a dict.

    Names are lowercased; a flag maps to None; values keep their quotes when quoted (so they
    serialize unchanged). Whitespace around ';' and '=' is allowed (RFC 3261 LWS). `order`
    receives the names in the order written, which MicroPython's dict does not keep.
    Raises SipError on an empty parameter (";;"), a bad name or a malformed value.
    """
    params = {}
    s = s.strip()
    if not s:
        return params
    if s[0] != ";":
        raise SipError("expected ';' before parameters: " + repr(s))
    start = 1
    n = len(s)
    while start <= n:
        i = find_unquoted(s, ";", start)
        if i < 0:
            i = n
        item = s[start:i].strip()
        if not item:
            raise SipError("empty parameter")
        name, eq, value = item.partition("=")
        name = name.strip().lower()
        if not is_token(name):
            raise SipError("bad parameter name " + repr(name))
        if eq:
            value = value.strip()
            if not value:
                raise SipError("parameter %s has an empty value" % name)
            if value[0] == '"':
                unquote(value)  # validate only: the quoted form is stored
            else:
                for c in value:
                    if not (is_alnum(c) or c in TOKEN_MARKS or c in "[]:"):
                        raise SipError("bad character in parameter " + name)
            params[name] = value
        else:
            params[name] = None
        if name not in order:
            order.append(name)
        start = i + 1
    return params


def ordered_keys(params, order):
    """The keys of params: those in `order` first (as written), then any added since."""
    keys = [k for k in order if k in params]
    if len(keys) != len(params):
        for k in params:
            if k not in keys:
                keys.append(k)
    return keys


def format_params(params, order):
    """Serialize a parameter dict as ";name=value;flag" in written order."""
    if not params:
        return ""
    out = []
    for k in ordered_keys(params, order):
        v = params[k]
        out.append(";" + k if v is None else ";" + k + "=" + str(v))
    return "".join(out)
