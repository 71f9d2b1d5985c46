# The device code type-checks against the MicroPython ESP32 port's stubs, so its calls into
# machine, network, esp32, neopixel and time match the real port's API (firmware/mypy.ini).
import os
import shutil

from sipmote.firmware import MODULES, typecheck


def test_device_code_typechecks_against_the_esp32_stubs(tmp_path):
    code, output = typecheck.run(str(tmp_path), capture=True)
    assert code == 0, output
    assert "Success: no issues found" in output


def test_the_check_catches_a_wrong_call_into_the_port(tmp_path):
    # A negative control: the same setup flags API misuse a board would raise on.
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "bad_device.py").write_text(
        "import network\n"
        "from machine import I2S, Pin\n"
        "wlan = network.WLAN(network.STA_IF)\n"
        "wlan.connect('ssid', 'key', bssid=5)\n"
        "mic = I2S(0, sck=Pin(1), ws=Pin(2), sd=Pin(3), mode=I2S.RX, bits=32,\n"
        "          format=I2S.MONO, rate=16000, ibuf=1024, buffer=3)\n"
    )
    code, output = typecheck.run(str(tmp_path / "work"), capture=True,
                                 extra_path=[str(tmp_path / "src")],
                                 extra_targets=["-m", "bad_device"])
    assert code == 1
    assert 'bad_device.py:4: error: Argument "bssid" to "connect" of "WLAN"' in output
    assert 'bad_device.py:5: error: Unexpected keyword argument "buffer" for "I2S"' in output
    assert output.count("bad_device.py") >= 2 and "phone/" not in output


# Each line of the device app that calls into the port, made wrong the way a slip would: the
# check must flag every one, in the app's own files (the hardware path, which the simulator
# board shares at run time but mypy must judge against machine/neopixel/network, not against
# unix_sim's stand-ins; and inside functions, which mypy skips unless check_untyped_defs).
MUTATIONS = [
    ("phone/board.py", '            ibuf=s["ibuf"],\n', '            ibuf=s["ibuf"], buffer=3,\n',
     'Unexpected keyword argument "buffer"'),
    ("phone/board.py", 'sck=Pin(s["sck"]),', 'sck=s["sck"], pin=Pin(1),',
     'Unexpected keyword argument "pin"'),
    ("phone/board.py", 'Pin(b["pin"], Pin.IN, Pin.PULL_UP)', 'Pin(b["pin"], Pin.IN, pull_up=1)',
     'Unexpected keyword argument "pull_up"'),
    ("phone/board.py", "NeoPixel(pin, 1)", "NeoPixel(pin)",
     'Missing positional argument "n" in call to "NeoPixel"'),
    ("phone/board.py", "network.WLAN(network.STA_IF)", "network.WLAN(network.STA)",
     'Module has no attribute "STA"'),
    ("phone/media.py", "self.mic.irq(self.on_mic)", "self.mic.irq(self.on_mic, 1)",
     'Too many arguments for "irq" of "I2S"'),
    ("phone/media.py", "port.mic.readinto(self.uplink.raw_in)",
     "port.mic.readinto(self.uplink.raw_in, 5)", 'Too many arguments for "readinto" of "I2S"'),
    ("phone/wifi.py", "wlan.connect(self.ssid, self._password)",
     "wlan.connect(self.ssid, self._password, bssid=5)",
     'Argument "bssid" to "connect" of "WLAN" has incompatible type "int"'),
    ("phone/wifi.py", "            if wlan.isconnected():", "            if wlan.is_connected():",
     '"WLAN" has no attribute "is_connected"'),
]


def test_wrong_calls_into_the_port_in_the_app_fail_the_check(tmp_path):
    modules = tmp_path / "modules"
    shutil.copytree(MODULES, str(modules), ignore=shutil.ignore_patterns("__pycache__"))
    expected = []
    for rel, old, new, message in MUTATIONS:
        path = modules / rel
        text = path.read_text()
        assert text.count(old) == 1, (rel, old)
        path.write_text(text.replace(old, new))
        expected.append((os.path.join(str(modules), rel) + ":", message))
    code, output = typecheck.run(str(tmp_path / "work"), capture=True, modules=str(modules))
    assert code == 1, output
    lines = output.splitlines()
    for where, message in expected:
        assert any(x.startswith(where) and message in x for x in lines), (where, message, output)
    assert "Found %d errors" % len(expected) in output, output  # one each, nothing else
