"""The relay's TOML configuration: load, validate, apply command-line overrides.

Every value is checked when the file is loaded and an error names the offending key
(``agents[1].voice: expected a string, got 3``), so a typo fails at start, not mid-call.
Secrets (the OpenAI API key, device and PBX passwords, HA1 hashes) never appear in a repr,
a log line or an error message: their dataclass fields are masked.

Sections (see example.toml beside this file)::

    [sip]        bind, port, rtp_port_min, rtp_port_max, public_address, realm, user_agent,
                 digest_algorithms
    [backend]    kind ("echo" | "openai"), openai_url, model, api_key (or $OPENAI_API_KEY),
                 turn_detection, transcription_model
    [[agents]]   name (the SIP user callers dial), instructions, voice, tools, backend
    [[devices]]  user, password or ha1 (digest credentials; a device registers and calls with them)
    [admission]  allowlist (addresses, CIDRs, names), max_failures, failure_window_s, lockout_s
    [media]      prebuffer_ms (agent audio queued before a talkspurt starts: 0..40, default 20),
                 reorder_ms (caller audio after a gap waits for the missing packet: 0..200,
                 default 60)
    [pbx]        registrar, user, password, auth_user, domain, expires, agent
    [logging]    level, calls_dir
    [control]    socket (the Unix socket `sipmote relay call DEVICE` talks to)

Python 3.11+ reads TOML with the standard ``tomllib``; on 3.10 the same parser is the
``tomli`` package (pyproject.toml requires it there).
"""

import dataclasses
import ipaddress
import os
import re
import tempfile

try:
    import tomllib
except ImportError:  # Python 3.10: the identical parser, packaged as tomli
    import tomli as tomllib

BACKEND_KINDS = ("echo", "openai")
DEFAULT_OPENAI_URL = "wss://api.openai.com/v1/realtime"
DEFAULT_MODEL = "gpt-realtime"
DEFAULT_VOICE = "marin"
LOG_LEVELS = ("debug", "info", "warning", "error")
# A SIP user part we are willing to route on: RFC 3261 "unreserved" plus the few marks
# phones really use. Anything else is rejected at load instead of never matching a call.
_USER_RE = re.compile(r"^[A-Za-z0-9._~!$&'()*+,;=-]{1,64}$")
_MAX_AGENTS = 64
_MAX_DEVICES = 1024
_MAX_ALLOWLIST = 256


class ConfigError(ValueError):
    """The configuration is invalid; the message names the key."""


def _secret():
    return dataclasses.field(default=None, repr=False)


@dataclasses.dataclass
class SipSettings:
    bind: str = "0.0.0.0"
    port: int = 5060
    rtp_port_min: int = 20000
    rtp_port_max: int = 20999
    # the address written into Contact/Via/SDP when `bind` is a wildcard or behind NAT
    public_address: str | None = None
    realm: str = "sipmote"
    user_agent: str = "sipmote-relay"
    # one WWW-Authenticate each, in this order. MD5 only by default: SIPp 3.6 answers only the
    # first challenge and refuses SHA-256, and baresip 1.0 gives up on the whole 401 when any
    # challenge is SHA-256. ["SHA-256", "MD5"] suits phones that do RFC 8760.
    digest_algorithms: tuple = ("MD5",)


@dataclasses.dataclass
class BackendSettings:
    kind: str = "echo"
    openai_url: str = DEFAULT_OPENAI_URL
    model: str = DEFAULT_MODEL
    api_key: str | None = _secret()
    # passed to the media half as-is: {"type": "server_vad", ...} or {"type": "semantic_vad"}
    turn_detection: dict | None = None
    transcription_model: str | None = None

    def __repr__(self):
        key = "None" if self.api_key is None else "'***'"
        return "BackendSettings(kind=%r, openai_url=%r, model=%r, api_key=%s)" % (
            self.kind,
            self.openai_url,
            self.model,
            key,
        )


@dataclasses.dataclass
class Agent:
    name: str
    instructions: str = "You are a helpful voice assistant. Keep answers short."
    voice: str = DEFAULT_VOICE
    tools: list = dataclasses.field(default_factory=list)
    backend: str | None = None  # overrides [backend].kind for this agent


@dataclasses.dataclass
class Device:
    user: str
    password: str | None = _secret()
    ha1: str | None = _secret()  # hex MD5(user:realm:password), for configs that keep no password


@dataclasses.dataclass
class AdmissionSettings:
    allowlist: list = dataclasses.field(default_factory=list)
    max_failures: int = 5
    failure_window_s: int = 60
    lockout_s: int = 300
    table_size: int = 4096


@dataclasses.dataclass
class PbxSettings:
    registrar: str  # "host" or "host:port" or a sip: URI
    user: str
    password: str | None = _secret()
    auth_user: str | None = None
    domain: str | None = None
    expires: int = 300
    agent: str | None = None  # which agent answers calls routed by the PBX (default: the first)


@dataclasses.dataclass
class MediaSettings:
    # agent audio queued before a talkspurt's first packet (a frame at least is always needed):
    # the default is measured by tests/bench/bench_e2e.py, the bound is the product's promise
    prebuffer_ms: int = 20
    # how long caller RTP after a gap waits for the missing packet (reorder.py); 0: arrival
    # order, late packets dropped
    reorder_ms: int = 60


@dataclasses.dataclass
class LoggingSettings:
    level: str = "info"
    calls_dir: str | None = None


@dataclasses.dataclass
class ControlSettings:
    socket: str | None = None  # default: <tmp>/sipmote-relay-<sip port>.sock


@dataclasses.dataclass
class RelayConfig:
    sip: SipSettings = dataclasses.field(default_factory=SipSettings)
    backend: BackendSettings = dataclasses.field(default_factory=BackendSettings)
    agents: list = dataclasses.field(default_factory=list)
    devices: list = dataclasses.field(default_factory=list)
    admission: AdmissionSettings = dataclasses.field(default_factory=AdmissionSettings)
    pbx: PbxSettings | None = None
    media: MediaSettings = dataclasses.field(default_factory=MediaSettings)
    logging: LoggingSettings = dataclasses.field(default_factory=LoggingSettings)
    control: ControlSettings = dataclasses.field(default_factory=ControlSettings)
    source: str | None = None  # the file it came from

    def agent(self, name):
        for agent in self.agents:
            if agent.name == name:
                return agent
        return None

    def device(self, user):
        for device in self.devices:
            if device.user == user:
                return device
        return None

    def backend_kind(self, agent):
        return agent.backend or self.backend.kind

    def control_socket(self):
        if self.control.socket:
            return self.control.socket
        return os.path.join(tempfile.gettempdir(), "sipmote-relay-%d.sock" % self.sip.port)


# -- validation helpers: each takes the dotted key for its error message ---------------------


def _type_name(value):
    return type(value).__name__


def _str(table, key, where, default, required=False, empty_ok=False):
    if key not in table:
        if required:
            raise ConfigError("%s%s: required" % (where, key))
        return default
    value = table[key]
    if not isinstance(value, str):
        raise ConfigError("%s%s: expected a string, got %s" % (where, key, _type_name(value)))
    if not value and not empty_ok:
        raise ConfigError("%s%s: must not be empty" % (where, key))
    return value


def _int(table, key, where, default, lo, hi):
    if key not in table:
        return default
    value = table[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError("%s%s: expected an integer, got %s" % (where, key, _type_name(value)))
    if not lo <= value <= hi:
        raise ConfigError("%s%s: %d is outside %d..%d" % (where, key, value, lo, hi))
    return value


def _table(data, key, where=""):
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError("%s%s: expected a table, got %s" % (where, key, _type_name(value)))
    return value


def _no_unknown(table, allowed, where):
    for key in table:
        if key not in allowed:
            raise ConfigError("%s%s: unknown key" % (where, key))


def _user(value, key):
    if not _USER_RE.match(value):
        raise ConfigError("%s: %r is not a usable SIP user name" % (key, value))
    return value


def check_host(value, key):
    """A bind/public address or registrar host: an IP literal or a DNS name."""
    try:
        ipaddress.ip_address(value)
        return value
    except ValueError:
        pass
    if not re.match(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$", value):
        raise ConfigError("%s: %r is neither an IP address nor a host name" % (key, value))
    return value


def check_allow_entry(value, key):
    """An allowlist entry: an address, a CIDR network, or a host name resolved at start."""
    try:
        ipaddress.ip_network(value, strict=False)
        return value
    except ValueError:
        pass
    if "/" in value:
        raise ConfigError("%s: %r is not a valid network" % (key, value))
    return check_host(value, key)


# -- sections ----------------------------------------------------------------------------------


def _sip(data):
    t = _table(data, "sip")
    w = "sip."
    _no_unknown(
        t,
        (
            "bind",
            "port",
            "rtp_port_min",
            "rtp_port_max",
            "public_address",
            "realm",
            "user_agent",
            "digest_algorithms",
        ),
        w,
    )
    s = SipSettings()
    s.bind = check_host(_str(t, "bind", w, s.bind), w + "bind")
    s.port = _int(t, "port", w, s.port, 0, 65535)  # 0: any free port (tests)
    s.rtp_port_min = _int(t, "rtp_port_min", w, s.rtp_port_min, 1024, 65534)
    s.rtp_port_max = _int(t, "rtp_port_max", w, s.rtp_port_max, 1025, 65535)
    if s.rtp_port_max <= s.rtp_port_min:
        raise ConfigError(
            "sip.rtp_port_max: %d must be above sip.rtp_port_min %d"
            % (s.rtp_port_max, s.rtp_port_min)
        )
    public = _str(t, "public_address", w, None)
    s.public_address = None if public is None else check_host(public, w + "public_address")
    s.realm = _str(t, "realm", w, s.realm)
    if '"' in s.realm or "\\" in s.realm:
        raise ConfigError("sip.realm: must not contain quotes or backslashes")
    s.user_agent = _str(t, "user_agent", w, s.user_agent)
    algs = t.get("digest_algorithms", list(s.digest_algorithms))
    if not isinstance(algs, list) or not algs or not all(isinstance(a, str) for a in algs):
        raise ConfigError("sip.digest_algorithms: expected a non-empty array of strings")
    for a in algs:
        if a.upper() not in ("MD5", "SHA-256"):
            raise ConfigError("sip.digest_algorithms: %r is not MD5 or SHA-256" % a)
    s.digest_algorithms = tuple(a.upper() for a in algs)
    return s


def _backend(data, environ):
    t = _table(data, "backend")
    w = "backend."
    _no_unknown(
        t,
        ("kind", "openai_url", "model", "api_key", "turn_detection", "transcription_model"),
        w,
    )
    b = BackendSettings()
    b.kind = _str(t, "kind", w, b.kind)
    if b.kind not in BACKEND_KINDS:
        raise ConfigError("backend.kind: %r is not one of %s" % (b.kind, ", ".join(BACKEND_KINDS)))
    b.openai_url = _url(_str(t, "openai_url", w, b.openai_url), w + "openai_url")
    b.model = _str(t, "model", w, b.model)
    b.api_key = _str(t, "api_key", w, None) or environ.get("OPENAI_API_KEY") or None
    td = t.get("turn_detection")
    if td is not None:
        if not isinstance(td, dict) or not isinstance(td.get("type"), str):
            raise ConfigError("backend.turn_detection: expected a table with a string 'type'")
        b.turn_detection = dict(td)
    b.transcription_model = _str(t, "transcription_model", w, None)
    return b


def _url(value, key):
    if not re.match(r"^(wss?|https?)://[^\s/]+", value):
        raise ConfigError("%s: %r is not a ws://, wss://, http:// or https:// URL" % (key, value))
    return value


def _agents(data):
    raw = data.get("agents", [])
    if not isinstance(raw, list):
        raise ConfigError("agents: expected an array of tables ([[agents]])")
    if len(raw) > _MAX_AGENTS:
        raise ConfigError("agents: at most %d agents" % _MAX_AGENTS)
    agents = []
    seen = set()
    for i, t in enumerate(raw):
        w = "agents[%d]." % i
        if not isinstance(t, dict):
            raise ConfigError("agents[%d]: expected a table" % i)
        _no_unknown(t, ("name", "instructions", "voice", "tools", "backend"), w)
        a = Agent(name=_user(_str(t, "name", w, None, required=True), w + "name"))
        if a.name in seen:
            raise ConfigError("%sname: agent %r is defined twice" % (w, a.name))
        seen.add(a.name)
        a.instructions = _str(t, "instructions", w, a.instructions, empty_ok=True)
        a.voice = _str(t, "voice", w, a.voice)
        tools = t.get("tools", [])
        if not isinstance(tools, list) or not all(isinstance(x, dict) for x in tools):
            raise ConfigError("%stools: expected an array of tables" % w)
        for j, tool in enumerate(tools):
            if not isinstance(tool.get("name"), str) or not tool["name"]:
                raise ConfigError("%stools[%d].name: required" % (w, j))
        a.tools = [dict(x) for x in tools]
        a.backend = _str(t, "backend", w, None)
        if a.backend is not None and a.backend not in BACKEND_KINDS:
            raise ConfigError(
                "%sbackend: %r is not one of %s" % (w, a.backend, ", ".join(BACKEND_KINDS))
            )
        agents.append(a)
    if not agents:
        agents.append(Agent(name="agent"))
    return agents


def _devices(data):
    raw = data.get("devices", [])
    if not isinstance(raw, list):
        raise ConfigError("devices: expected an array of tables ([[devices]])")
    if len(raw) > _MAX_DEVICES:
        raise ConfigError("devices: at most %d devices" % _MAX_DEVICES)
    devices = []
    seen = set()
    for i, t in enumerate(raw):
        w = "devices[%d]." % i
        if not isinstance(t, dict):
            raise ConfigError("devices[%d]: expected a table" % i)
        _no_unknown(t, ("user", "password", "ha1"), w)
        d = Device(user=_user(_str(t, "user", w, None, required=True), w + "user"))
        if d.user in seen:
            raise ConfigError("%suser: device %r is defined twice" % (w, d.user))
        seen.add(d.user)
        d.password = _str(t, "password", w, None)
        d.ha1 = _str(t, "ha1", w, None)
        if (d.password is None) == (d.ha1 is None):
            raise ConfigError("%spassword: give exactly one of password or ha1" % w)
        if d.ha1 is not None and not re.match(r"^[0-9a-fA-F]{32}$", d.ha1):
            raise ConfigError("%sha1: expected 32 hex digits (MD5 of user:realm:password)" % w)
        if d.ha1 is not None:
            d.ha1 = d.ha1.lower()
        devices.append(d)
    return devices


def _admission(data):
    t = _table(data, "admission")
    w = "admission."
    _no_unknown(t, ("allowlist", "max_failures", "failure_window_s", "lockout_s", "table_size"), w)
    a = AdmissionSettings()
    allow = t.get("allowlist", [])
    if not isinstance(allow, list) or not all(isinstance(x, str) for x in allow):
        raise ConfigError("admission.allowlist: expected an array of strings")
    if len(allow) > _MAX_ALLOWLIST:
        raise ConfigError("admission.allowlist: at most %d entries" % _MAX_ALLOWLIST)
    a.allowlist = [
        check_allow_entry(x, "admission.allowlist[%d]" % i) for i, x in enumerate(allow)
    ]
    a.max_failures = _int(t, "max_failures", w, a.max_failures, 1, 1000)
    a.failure_window_s = _int(t, "failure_window_s", w, a.failure_window_s, 1, 86400)
    a.lockout_s = _int(t, "lockout_s", w, a.lockout_s, 0, 86400)
    a.table_size = _int(t, "table_size", w, a.table_size, 16, 1 << 20)
    return a


def _pbx(data, agents):
    if "pbx" not in data:
        return None
    t = _table(data, "pbx")
    w = "pbx."
    _no_unknown(t, ("registrar", "user", "password", "auth_user", "domain", "expires", "agent"), w)
    registrar = _str(t, "registrar", w, None, required=True)
    p = PbxSettings(
        registrar=registrar, user=_user(_str(t, "user", w, None, required=True), w + "user")
    )
    host = registrar[4:] if registrar.startswith("sip:") else registrar
    host = host.split(";", 1)[0]
    if host.startswith("["):
        check_host(host[1 : host.find("]")], w + "registrar")
    else:
        name, _, port = host.partition(":")
        check_host(name, w + "registrar")
        if port and (not port.isdigit() or not 0 < int(port) < 65536):
            raise ConfigError("pbx.registrar: bad port %r" % port)
    p.password = _str(t, "password", w, None)
    p.auth_user = _str(t, "auth_user", w, None)
    p.domain = _str(t, "domain", w, None)
    p.expires = _int(t, "expires", w, p.expires, 30, 86400)
    p.agent = _str(t, "agent", w, None)
    if p.agent is not None and p.agent not in [a.name for a in agents]:
        raise ConfigError("pbx.agent: %r is not a configured agent" % p.agent)
    return p


def _media(data):
    from .playout import DEFAULT_PREBUFFER_MS, MAX_PREBUFFER_MS
    from .reorder import DEFAULT_HOLD_MS, MAX_HOLD_MS

    t = _table(data, "media")
    w = "media."
    _no_unknown(t, ("prebuffer_ms", "reorder_ms"), w)
    m = MediaSettings()
    m.prebuffer_ms = _int(t, "prebuffer_ms", w, DEFAULT_PREBUFFER_MS, 0, MAX_PREBUFFER_MS)
    m.reorder_ms = _int(t, "reorder_ms", w, DEFAULT_HOLD_MS, 0, MAX_HOLD_MS)
    return m


def _logging(data, base_dir):
    t = _table(data, "logging")
    w = "logging."
    _no_unknown(t, ("level", "calls_dir"), w)
    lg = LoggingSettings()
    lg.level = _str(t, "level", w, lg.level).lower()
    if lg.level not in LOG_LEVELS:
        raise ConfigError("logging.level: %r is not one of %s" % (lg.level, ", ".join(LOG_LEVELS)))
    calls_dir = _str(t, "calls_dir", w, None)
    if calls_dir is not None and base_dir and not os.path.isabs(calls_dir):
        calls_dir = os.path.join(base_dir, calls_dir)
    lg.calls_dir = calls_dir
    return lg


def _control(data, base_dir):
    t = _table(data, "control")
    _no_unknown(t, ("socket",), "control.")
    c = ControlSettings()
    path = _str(t, "socket", "control.", None)
    if path is not None and base_dir and not os.path.isabs(path):
        path = os.path.join(base_dir, path)
    c.socket = path
    return c


_SECTIONS = ("sip", "backend", "agents", "devices", "admission", "pbx", "media", "logging",
             "control")


def from_dict(data, environ=None, base_dir=None):
    """Validate a parsed TOML document into a RelayConfig (raises ConfigError)."""
    environ = os.environ if environ is None else environ
    _no_unknown(data, _SECTIONS, "")
    cfg = RelayConfig()
    cfg.sip = _sip(data)
    cfg.backend = _backend(data, environ)
    cfg.agents = _agents(data)
    cfg.devices = _devices(data)
    cfg.admission = _admission(data)
    cfg.pbx = _pbx(data, cfg.agents)
    cfg.media = _media(data)
    cfg.logging = _logging(data, base_dir)
    cfg.control = _control(data, base_dir)
    return cfg


def load(path, environ=None):
    """Read and validate a TOML file. Errors name the file and the key."""
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except OSError as e:
        raise ConfigError("%s: %s" % (path, e.strerror or e)) from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError("%s: not valid TOML: %s" % (path, e)) from None
    try:
        cfg = from_dict(data, environ, base_dir=os.path.dirname(os.path.abspath(path)))
    except ConfigError as e:
        raise ConfigError("%s: %s" % (path, e)) from None
    cfg.source = str(path)
    return cfg


def apply_overrides(
    cfg,
    bind=None,
    port=None,
    backend=None,
    openai_url=None,
    model=None,
    rtp_port_min=None,
    rtp_port_max=None,
    public_address=None,
    calls_dir=None,
):
    """Command-line flags win over the file; the same checks apply to them."""
    if bind is not None:
        cfg.sip.bind = check_host(bind, "--bind")
    if port is not None:
        if not 0 <= port <= 65535:
            raise ConfigError("--port: %d is outside 0..65535" % port)
        cfg.sip.port = port
    if public_address is not None:
        cfg.sip.public_address = check_host(public_address, "--public-address")
    if rtp_port_min is not None:
        cfg.sip.rtp_port_min = rtp_port_min
    if rtp_port_max is not None:
        cfg.sip.rtp_port_max = rtp_port_max
    if not 1024 <= cfg.sip.rtp_port_min < cfg.sip.rtp_port_max <= 65535:
        raise ConfigError(
            "--rtp-ports: %d..%d is not a range within 1024..65535"
            % (cfg.sip.rtp_port_min, cfg.sip.rtp_port_max)
        )
    if backend is not None:
        if backend not in BACKEND_KINDS:
            raise ConfigError(
                "--backend: %r is not one of %s" % (backend, ", ".join(BACKEND_KINDS))
            )
        cfg.backend.kind = backend
        for agent in cfg.agents:  # the flag is "use this backend", whatever the file said
            agent.backend = None
    if openai_url is not None:
        cfg.backend.openai_url = _url(openai_url, "--openai-url")
    if model is not None:
        cfg.backend.model = model
    if calls_dir is not None:
        cfg.logging.calls_dir = calls_dir
    return cfg


def needs_api_key(cfg):
    """True when some agent uses the openai backend: then an API key must be configured."""
    return any(cfg.backend_kind(a) == "openai" for a in cfg.agents)
