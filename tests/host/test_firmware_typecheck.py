# The device code type-checks against the MicroPython ESP32 port's stubs, so its calls into
# machine, network, esp32, neopixel and time match the real port's API (firmware/mypy.ini).
from sipmote.firmware import typecheck


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
