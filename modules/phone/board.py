# phone.board: the board profile (pins, I2S ids, formats, rates, button, LED) and the hardware
# objects built from it. MIT licence.
#
# A profile is boards/<name>/profile.json in the source tree; on a device the same file lives
# under /boards/<name>/ (copied, or in a ROMFS image mounted at /rom). The config's "board"
# names it. The "sim" platform swaps `machine` for unix_sim.board (on the unix port only, never
# in a board's firmware), whose I2S, Pin and NeoPixel follow the documented machine API with
# WAV files behind them, so the rest of the app cannot tell a simulator from a board.
#
# One code path drives both: Board takes its classes from `machine` or from the simulator
# once, and every call (I2S(...), Pin(...), NeoPixel(...), network.WLAN(...)) is written once.
# The type check (python -m sipmote.firmware typecheck) must judge those calls against the
# ESP32 port's stubs, not the simulator's stand-ins: mypy takes any name TYPE_CHECKING as
# true, so for mypy the simulator's branches are unreachable and the classes are machine's.
# On the device TYPE_CHECKING is a plain False (there is no typing module to import), and the
# `# type:` comments that give mypy the return types of what Board builds are comments.
import json

TYPE_CHECKING = False
if TYPE_CHECKING:  # names for the `# type:` comments (ruff does not read those)
    from machine import I2S, Pin  # noqa: F401
    from network import WLAN  # noqa: F401

PROFILE_DIRS = ("boards", "/boards", "/rom/boards", "/flash/boards")

_I2S_BITS = (16, 32)
_FORMATS = ("mono", "stereo")


class BoardError(ValueError):
    pass


def _fail(key, what):
    raise BoardError("board error: %s %s" % (key, what))


def _pin(section, key, value):
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 48:
        _fail(section + "." + key, "must be a GPIO number 0..48")
    return value


def _int(section, key, value, lo, hi):
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        _fail(section + "." + key, "must be an integer %d..%d" % (lo, hi))
    return value


def _i2s_section(p, section, rx):
    s = p.get(section)
    if not isinstance(s, dict):
        _fail(section, "must be an object")
    _int(section, "i2s_id", s.get("i2s_id"), 0, 1)
    for key in ("sck", "ws", "sd"):
        _pin(section, key, s.get(key))
    if s.get("bits") not in _I2S_BITS:
        _fail(section + ".bits", "must be 16 or 32")
    if s.get("format") not in _FORMATS:
        _fail(section + ".format", "must be mono or stereo")
    _int(section, "ibuf", s.get("ibuf"), 1024, 65536)
    rate = s.get("rate")
    kind = s.get("type", "i2s")
    if rx and kind == "pdm":
        # The PDM bit stream is read as 32-bit stereo words: the bit clock is 64 * rate and
        # the decoder decimates by 128, so 32000 gives a 2.048 MHz clock and 16 kHz audio.
        if rate != 32000 or s["bits"] != 32 or s["format"] != "stereo":
            _fail(section, "of type pdm needs rate 32000, bits 32, format stereo")
    elif rx:
        if kind != "i2s":
            _fail(section + ".type", "must be i2s or pdm")
        if rate not in (8000, 16000) or s["bits"] != 32 or s["format"] != "mono":
            _fail(section, "needs rate 8000 or 16000, bits 32, format mono")
    else:
        if rate not in (8000, 16000) or s["bits"] != 16:
            _fail(section, "needs rate 8000 or 16000 and bits 16")
    s.setdefault("type", kind)
    return s


def validate_profile(p):
    """Check a profile dict; raise BoardError naming the key that is wrong."""
    if not isinstance(p, dict):
        _fail("profile", "must be a JSON object")
    if not isinstance(p.get("name"), str) or not p["name"]:
        _fail("name", "must be a non-empty string")
    if p.get("platform") not in ("esp32", "sim"):
        _fail("platform", "must be esp32 or sim")
    if p.get("duplex", "full") not in ("full", "half"):
        _fail("duplex", "must be full or half")
    p.setdefault("duplex", "full")
    _i2s_section(p, "mic", True)
    _i2s_section(p, "speaker", False)
    if p["duplex"] == "full" and p["mic"]["i2s_id"] == p["speaker"]["i2s_id"]:
        _fail("speaker.i2s_id", "must differ from mic.i2s_id on a full-duplex board")
    button = p.get("button")
    if button is not None:
        if not isinstance(button, dict):
            _fail("button", "must be an object or null")
        _pin("button", "pin", button.get("pin"))
    led = p.get("led")
    if led is not None:
        if not isinstance(led, dict) or led.get("type") not in ("rgb", "gpio"):
            _fail("led.type", "must be rgb or gpio")
        _pin("led", "pin", led.get("pin"))
    return p


def find_profile(name, dirs=None):
    """Path of boards/<name>/profile.json in the first directory of `dirs` that has it."""
    if not name or "/" in name or "." in name:
        _fail("name", "must be a plain board name")
    for d in dirs or PROFILE_DIRS:
        path = "%s/%s/profile.json" % (d, name)
        try:
            open(path).close()
            return path
        except OSError:
            pass
    raise BoardError("board error: no profile for board %r in %s" % (name, ", ".join(
        dirs or PROFILE_DIRS)))


def load_profile(name, dirs=None):
    path = find_profile(name, dirs)
    try:
        with open(path) as f:
            data = json.loads(f.read())
    except ValueError:
        raise BoardError("board error: %s is not valid JSON" % path) from None
    if data.get("name") != name:
        _fail("name", "in %s must be %r" % (path, name))
    return validate_profile(data)


class Board:
    """Hardware built from a profile: I2S channels, the button pin, the LED, Wi-Fi."""

    def __init__(self, profile):
        self.profile = profile
        self.name = profile["name"]
        self.sim = profile["platform"] == "sim"
        self.half_duplex = profile["duplex"] == "half"
        # (TYPE_CHECKING first: mypy folds a condition from its left operand only)
        if not TYPE_CHECKING and self.sim:
            from unix_sim import board as sim_board

            self.I2S, self.Pin = sim_board.I2S, sim_board.Pin
        else:
            from machine import I2S, Pin

            self.I2S, self.Pin = I2S, Pin

    def _i2s(self, section, mode):
        s = self.profile[section]
        I2S, Pin = self.I2S, self.Pin
        return I2S(
            s["i2s_id"],
            sck=Pin(s["sck"]),
            ws=Pin(s["ws"]),
            sd=Pin(s["sd"]),
            mode=mode,
            bits=s["bits"],
            format=I2S.STEREO if s["format"] == "stereo" else I2S.MONO,
            rate=s["rate"],
            ibuf=s["ibuf"],
        )

    def open_mic(self):
        # type: () -> I2S
        return self._i2s("mic", self.I2S.RX)

    def open_speaker(self):
        # type: () -> I2S
        return self._i2s("speaker", self.I2S.TX)

    def button_pin(self):
        # type: () -> Pin | None
        b = self.profile.get("button")
        if b is None:
            return None
        Pin = self.Pin
        if b.get("pull_up"):
            return Pin(b["pin"], Pin.IN, Pin.PULL_UP)
        return Pin(b["pin"], Pin.IN)

    def led_driver(self):
        """(kind, driver, active_low) for phone.led.StatusLed: ("rgb", NeoPixel, False),
        ("gpio", Pin, active_low) or (None, None, False) when the board has no LED."""
        led = self.profile.get("led")
        if led is None:
            return None, None, False
        pin = self.Pin(led["pin"], self.Pin.OUT)
        if led["type"] == "rgb":
            if not TYPE_CHECKING and self.sim:
                from unix_sim.board import NeoPixel
            else:
                from neopixel import NeoPixel
            return "rgb", NeoPixel(pin, 1), False
        return "gpio", pin, bool(led.get("active_low"))

    def wlan(self):
        # type: () -> WLAN | None
        """The station interface, or None on the simulator (its network is the host's)."""
        if self.sim:
            return None
        import network

        return network.WLAN(network.STA_IF)

    def service_tasks(self):
        """Coroutines the board needs running beside the app: the simulator's DMA clock,
        which completes its non-blocking I2S transfers; nothing on a real board."""
        if not TYPE_CHECKING and self.sim:
            from unix_sim import board as sim_board

            return [sim_board.dma_task()]
        return []
