# Board profiles: every shipped profile validates; a broken one names the key; the simulator
# board builds its I2S channels with the profile's arguments. Profile checks run under both
# runtimes; building hardware objects needs the unix port.
import json

from checks import is_micropython, raises, skip

from phone import board

RUNTIMES = ("cpython", "micropython")
MICROPYTHON_HEAPSIZE = "256K"
BOARDS = (__file__.rsplit("/", 1)[0] + "/../../boards",)
SHIPPED = ("esp32s3_devkitc", "esp32_devkit", "atom_echo", "unix_sim", "unix_sim_pdm")


def profile(name):
    with open("%s/%s/profile.json" % (BOARDS[0], name)) as f:
        return json.loads(f.read())


def test_every_shipped_profile_loads():
    for name in SHIPPED:
        p = board.load_profile(name, BOARDS)
        assert p["name"] == name
        assert p["mic"]["type"] in ("i2s", "pdm")
    echo = board.load_profile("atom_echo", BOARDS)
    assert echo["duplex"] == "half"
    # the Atom Echo's shared pin: mic clock and speaker word clock are both G33
    assert echo["mic"]["sck"] == 33 and echo["speaker"]["ws"] == 33
    assert (echo["speaker"]["sck"], echo["speaker"]["sd"], echo["mic"]["sd"]) == (19, 22, 23)
    assert (echo["button"]["pin"], echo["led"]["pin"]) == (39, 27)


def broken(name, change, message):
    p = profile(name)
    change(p)
    with raises(board.BoardError, match=message):
        board.validate_profile(p)


def test_broken_profiles_name_the_key():
    broken("unix_sim", lambda p: p["mic"].update(sck=60), "board error: mic.sck must be a GPIO")
    broken("unix_sim", lambda p: p["mic"].update(rate=44100), "board error: mic needs rate")
    broken("unix_sim", lambda p: p["speaker"].update(bits=24), "speaker.bits must be 16 or 32")
    broken("unix_sim", lambda p: p["speaker"].update(i2s_id=0), "speaker.i2s_id must differ")
    broken("unix_sim", lambda p: p.update(platform="rp2"), "platform must be esp32 or sim")
    broken("unix_sim", lambda p: p.update(led={"type": "lamp", "pin": 2}), "led.type")
    broken("atom_echo", lambda p: p["mic"].update(rate=16000), "mic of type pdm needs rate 32000")
    with raises(board.BoardError, match="no profile for board 'nope'"):
        board.load_profile("nope", BOARDS)
    with raises(board.BoardError, match="plain board name"):
        board.load_profile("../etc", BOARDS)


def test_the_sim_board_builds_its_hardware_from_the_profile():
    if not is_micropython():
        skip("hardware objects are device code")
    b = board.Board(board.load_profile("unix_sim", BOARDS))
    mic = b.open_mic()
    spk = b.open_speaker()
    assert (mic.id, mic.pins, mic.bits, mic.rate) == (0, (1, 2, 3), 32, 16000)
    assert (spk.id, spk.pins, spk.bits, spk.rate) == (1, (4, 5, 6), 16, 16000)
    assert spk.capacity == 1024 // 2  # ibuf in 16-bit mono frames: two 256-frame DMA buffers
    mic.deinit()
    spk.deinit()
    kind, led, active_low = b.led_driver()
    assert kind == "rgb" and not active_low
    assert b.button_pin().value() == 1  # idle: pulled up
    assert b.wlan() is None
