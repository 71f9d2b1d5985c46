# phone.config: the device's JSON configuration: load, validate, fill defaults, mask secrets.
# MIT licence.
#
# One file on the device filesystem (default /config.json) holds everything the phone needs:
#
#   {"board": "esp32s3_devkitc",
#    "wifi": {"ssid": "home", "password": "..."},
#    "sip": {"user": "kitchen", "password": "...", "domain": "pbx.lan"},
#    "call": {"target": "sip:agent@relay.lan", "allowed_peers": ["relay.lan"]}}
#
# validate() checks every key against _SCHEMA and returns a new dict with the defaults filled
# in. A broken file raises ConfigError whose message names the key and what it must be
# ("config error: sip.port must be an integer 1..65535"). Secret values are never part of an
# error message, a log line or masked(); unknown keys are errors too, since a typo in a key
# would otherwise silently fall back to a default.
import json

_REQUIRED = object()

# kind, default, argument of the check. Kinds:
#   str (arg: max length)   secret (a str that is never shown)   int (arg: (lo, hi))   bool
#   choice (arg: allowed values)   uri (a sip:/sips: URI or "")   hostport ("host" or
#   "host:port" or "")   hosts (list of host names/addresses)   codecs (non-empty list)
_SCHEMA = {
    "board": ("str", "unix_sim", 40),
    "log_level": ("choice", "info", ("debug", "info", "warning", "error")),
    "wifi": {
        "ssid": ("str", "", 32),
        "password": ("secret", "", 64),
        "timeout_s": ("int", 20, (1, 300)),
        "hostname": ("str", "sipmote", 32),
    },
    "sip": {
        "user": ("str", _REQUIRED, 64),
        "password": ("secret", "", 128),
        "auth_user": ("str", "", 64),
        "display_name": ("str", "", 64),
        # The SIP domain of the account (the host part of our AOR). Empty: our own address.
        "domain": ("str", "", 128),
        # Where REGISTER goes. Empty: no registration (the phone only calls the relay directly
        # and answers calls sent straight to it).
        "registrar": ("hostport", "", None),
        "outbound_proxy": ("hostport", "", None),
        "port": ("int", 5060, (1, 65535)),
        "local_port": ("int", 5060, (1, 65535)),
        # Our address as others see it; empty: the Wi-Fi address (127.0.0.1 on the simulator).
        "local_ip": ("str", "", 45),
        "expires": ("int", 600, (10, 86400)),
        # SIP transactions held at once (voip.sip.transaction). Each keeps its request and
        # last response, 3-4.5 KB on the 64-bit unix port (less on a 32-bit ESP32), for up to
        # 32 s after it ends; a full table recycles the oldest finished one. The phone's own
        # use is a handful (REGISTER, a call's INVITE and BYE, the peer's requests): 8 bounds
        # what a flood of requests from an allowed address can take to +36 KB; the UA's
        # default of 32 let it take +146 KB (tests/device/test_sip_flood.py).
        "max_transactions": ("int", 8, (6, 32)),
    },
    "call": {
        "target": ("uri", "", None),
        "auto_call": ("bool", False, None),
        "auto_answer": ("bool", True, None),
        # Hosts whose INVITEs we answer, besides the registrar, the outbound proxy and the
        # target's host. Toll-fraud scanners send INVITEs straight to phones.
        "allowed_peers": ("hosts", [], 16),
        "no_rtp_hangup_s": ("int", 10, (0, 3600)),
        "max_call_s": ("int", 0, (0, 86400)),
        "ring_timeout_s": ("int", 60, (1, 600)),
    },
    "audio": {
        "codecs": ("codecs", ["PCMU", "PCMA"], None),
        "ptime": ("int", 20, (20, 20)),
        "mic_gain_db": ("int", 0, (-24, 36)),
        "speaker_gain_db": ("int", 0, (-36, 24)),
        "rtp_port": ("int", 40000, (1024, 65534)),
        "jitter_ms": ("int", 100, (20, 300)),  # the most the adaptive jitter buffer holds
        "echo_guard": ("bool", False, None),
        "echo_guard_db": ("int", 18, (0, 60)),
        "echo_guard_hangover_ms": ("int", 200, (0, 2000)),
        "echo_guard_threshold": ("int", 300, (0, 32767)),
    },
}

_CODECS = ("PCMU", "PCMA")


class ConfigError(ValueError):
    pass


def _fail(key, what, value=None, secret=False):
    msg = "config error: %s %s" % (key, what)
    if value is not None and not secret:
        text = repr(value)
        msg += " (got %s)" % (text if len(text) <= 40 else text[:37] + "...")
    raise ConfigError(msg)


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _check_host(key, host, value):
    # A DNS name or an IPv4/IPv6 literal: printable, no spaces, no scheme, bounded.
    if not host or len(host) > 253:
        _fail(key, "must name a host", value)
    for ch in host:
        if ch in " \t\r\n/@;,<>\"'" or ord(ch) < 33 or ord(ch) > 126:
            _fail(key, "must name a host", value)


def _check_hostport(key, value):
    if not isinstance(value, str):
        _fail(key, 'must be a string "host" or "host:port"', value)
    if not value:
        return ""
    host, port = value, None
    if value.startswith("["):  # [v6]:port
        end = value.find("]")
        if end < 0:
            _fail(key, 'must be "host" or "host:port"', value)
        host, rest = value[1:end], value[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                _fail(key, 'must be "host" or "host:port"', value)
            port = rest[1:]
    elif value.count(":") == 1:
        host, port = value.split(":")
    _check_host(key, host, value)
    if port is not None:
        if not port.isdigit() or not 1 <= int(port) <= 65535:
            _fail(key, "port must be an integer 1..65535", value)
    return value


def _check_value(key, kind, arg, value):
    if kind == "str" or kind == "secret":
        if not isinstance(value, str):
            _fail(key, "must be a string", value, kind == "secret")
        if len(value) > arg:
            _fail(key, "must be at most %d characters" % arg, value, kind == "secret")
        return value
    if kind == "int":
        if not _is_int(value) or not arg[0] <= value <= arg[1]:
            _fail(key, "must be an integer %d..%d" % arg, value)
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            _fail(key, "must be true or false", value)
        return value
    if kind == "choice":
        if value not in arg:
            _fail(key, "must be one of " + ", ".join(arg), value)
        return value
    if kind == "uri":
        if not isinstance(value, str):
            _fail(key, "must be a SIP URI string", value)
        if value and not (value.startswith("sip:") or value.startswith("sips:")):
            _fail(key, "must be a sip: URI like sip:agent@relay.lan", value)
        if len(value) > 256 or " " in value:
            _fail(key, "must be a sip: URI like sip:agent@relay.lan", value)
        return value
    if kind == "hostport":
        return _check_hostport(key, value)
    if kind == "hosts":
        if not isinstance(value, list) or len(value) > arg:
            _fail(key, "must be a list of at most %d host names or addresses" % arg, value)
        for i, host in enumerate(value):
            item = "%s[%d]" % (key, i)
            if not isinstance(host, str):
                _fail(item, "must be a string", host)
            _check_host(item, host, host)
        return list(value)
    if kind == "codecs":
        if not isinstance(value, list) or not value or len(value) > len(_CODECS):
            _fail(key, "must be a non-empty list of PCMU, PCMA", value)
        for name in value:
            if name not in _CODECS:
                _fail(key, "must be a non-empty list of PCMU, PCMA", value)
        return list(value)
    raise ConfigError("config error: bad schema kind " + kind)  # a bug here, not in the file


def _validate_section(prefix, schema, data):
    if not isinstance(data, dict):
        _fail(prefix[:-1] or "config", "must be a JSON object", None)
    for key in data:
        if key not in schema:
            _fail("unknown key", prefix + key)
    out = {}
    for key, spec in schema.items():
        path = prefix + key
        if isinstance(spec, dict):
            out[key] = _validate_section(path + ".", spec, data.get(key, {}))
            continue
        kind, default, arg = spec
        if key not in data:
            if default is _REQUIRED:
                _fail(path, "is required")
            out[key] = list(default) if isinstance(default, list) else default
        else:
            out[key] = _check_value(path, kind, arg, data[key])
    return out


def validate(data):
    """Check a config dict; return a new dict with every default filled in."""
    cfg = _validate_section("", _SCHEMA, data)
    if cfg["call"]["auto_call"] and not cfg["call"]["target"]:
        _fail("call.auto_call", "needs call.target")
    return cfg


def load(path):
    """Read and validate the JSON config file at `path`."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        raise ConfigError("config error: cannot read " + path) from None
    try:
        data = json.loads(text)
    except ValueError:
        raise ConfigError("config error: %s is not valid JSON" % path) from None
    return validate(data)


def _mask(schema, cfg):
    out = {}
    for key, value in cfg.items():
        spec = schema.get(key)
        if isinstance(spec, dict):
            out[key] = _mask(spec, value)
        elif spec is not None and spec[0] == "secret":
            out[key] = "***" if value else ""
        else:
            out[key] = value
    return out


def masked(cfg):
    """A copy of a validated config with every secret replaced by "***"."""
    return _mask(_SCHEMA, cfg)


def dump(cfg):
    """The masked config as one line of JSON: safe to print and to log."""
    return json.dumps(masked(cfg))


def is_secret(dotted_key, schema=_SCHEMA):
    head, _, rest = dotted_key.partition(".")
    spec = schema.get(head)
    if rest:
        return isinstance(spec, dict) and is_secret(rest, spec)
    return isinstance(spec, tuple) and spec[0] == "secret"
