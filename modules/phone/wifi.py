# phone.wifi: keep the station connected: connect with a timeout, back off, reconnect.
# MIT licence.
#
# WifiLink.run() is an asyncio task around network.WLAN(network.STA_IF):
#   1. active(True), connect(ssid, password), poll isconnected() until `timeout_s`;
#   2. on failure: log why (status() names wrong password / no AP), disconnect, wait the
#      backoff (1 s doubling to 60 s, reset after a success) and try again;
#   3. once up: call on_up(ip); then check every second, and on a drop call on_down() and
#      go back to 1. The app restarts SIP on on_up, so registration resumes after a drop.
# With no WLAN (the simulator), the link is up at once with the configured address.
import asyncio

from . import log

TYPE_CHECKING = False  # mypy reads it as True: the WLAN calls are checked against network's
if TYPE_CHECKING:  # a name for the `# type:` comment (ruff does not read those)
    from network import WLAN  # noqa: F401

try:
    import network

    _REASONS = {}
    for _name, _text in (
        ("STAT_WRONG_PASSWORD", "wrong password"),
        ("STAT_NO_AP_FOUND", "no access point with that SSID"),
        ("STAT_CONNECT_FAIL", "connection failed"),
        ("STAT_HANDSHAKE_TIMEOUT", "handshake timeout"),
        ("STAT_BEACON_TIMEOUT", "beacon timeout"),
    ):
        if hasattr(network, _name):
            _REASONS[getattr(network, _name)] = _text
except ImportError:
    network = None
    _REASONS = {}


class WifiLink:
    def __init__(self, wlan, ssid, password, timeout_s=20, hostname=None, static_ip="",
                 backoff_ms=1000, backoff_max_ms=60000, poll_ms=1000):
        # None on the simulator (run() is up at once): the type is the board's interface
        self.wlan = wlan  # type: WLAN
        self.ssid = ssid
        self._password = password  # never logged
        self.timeout_ms = timeout_s * 1000
        self.hostname = hostname
        self.static_ip = static_ip
        self.backoff_min = backoff_ms
        self.backoff_max = backoff_max_ms
        self.poll_ms = poll_ms
        self.state = "down"  # "down", "connecting", "up"
        self.ip = ""
        self.attempts = 0
        self.drops = 0
        self.on_up = None  # callables set by the app
        self.on_down = None

    def _address(self):
        try:
            return self.wlan.ipconfig("addr4")[0]
        except (AttributeError, TypeError, ValueError, OSError):
            return self.wlan.ifconfig()[0]

    def _up(self, ip):
        self.state = "up"
        self.ip = ip
        log.info("wifi", "up: %s", ip)
        if self.on_up is not None:
            self.on_up(ip)

    async def _connect_once(self):
        wlan = self.wlan
        self.state = "connecting"
        self.attempts += 1
        log.info("wifi", "connecting to %r (attempt %d)", self.ssid, self.attempts)
        wlan.active(True)
        if self.hostname and network is not None and hasattr(network, "hostname"):
            try:
                network.hostname(self.hostname)
            except (OSError, ValueError):
                pass
        try:
            wlan.connect(self.ssid, self._password)
        except OSError as e:
            log.warning("wifi", "connect() failed: %s", e)
            return False
        waited = 0
        while waited < self.timeout_ms:
            if wlan.isconnected():
                return True
            await asyncio.sleep_ms(200)
            waited += 200
        status = wlan.status() if hasattr(wlan, "status") else None
        log.warning("wifi", "not connected after %d s: %s", self.timeout_ms // 1000,
                    _REASONS.get(status, "status %r" % (status,)))
        try:
            wlan.disconnect()
        except OSError:
            pass
        return False

    async def run(self):
        if self.wlan is None:
            self._up(self.static_ip or "127.0.0.1")
            return
        backoff = self.backoff_min
        while True:
            if not self.wlan.isconnected():
                if not await self._connect_once():
                    self.state = "down"
                    log.info("wifi", "retrying in %d ms", backoff)
                    await asyncio.sleep_ms(backoff)
                    backoff = min(backoff * 2, self.backoff_max)
                    continue
            backoff = self.backoff_min
            self._up(self._address())
            while self.wlan.isconnected():
                await asyncio.sleep_ms(self.poll_ms)
            self.drops += 1
            self.state = "down"
            log.warning("wifi", "link lost")
            if self.on_down is not None:
                self.on_down()
