# sipmote_start (the autostart logic main.py runs at boot) and the frozen main.py, on the
# MicroPython unix port.
import os
import sys

RUNTIMES = ("micropython",)

FIRMWARE = __file__.rsplit("/", 1)[0] + "/../../firmware"
if FIRMWARE not in sys.path:
    sys.path.append(FIRMWARE)

import sipmote_start  # noqa: E402
from checks import skip  # noqa: E402

TMP = "/tmp/sipmote-start-test-%d" % os.getpid() if hasattr(os, "getpid") else "/tmp/sst"


def _fresh():
    try:
        os.mkdir(TMP)
    except OSError:
        pass
    for name in ("config.json", "noautostart"):
        try:
            os.remove(TMP + "/" + name)
        except OSError:
            pass
    return TMP + "/config.json", TMP + "/noautostart"


def _write(path, text):
    with open(path, "w") as f:
        f.write(text)


def test_no_config_means_no_start():
    config, flag = _fresh()
    start, why = sipmote_start.should_start(config, flag)
    assert not start and "no " + config in why


def test_noautostart_file_wins():
    config, flag = _fresh()
    _write(config, '{"board": "unix_sim", "sip": {"user": "a"}}')
    _write(flag, "")
    start, why = sipmote_start.should_start(config, flag)
    assert not start and flag + " exists" in why
    assert sipmote_start.run(config, flag) is None  # returns to the REPL


def test_config_present_starts_and_the_sim_board_has_no_button_check():
    config, flag = _fresh()
    _write(config, '{"board": "unix_sim", "sip": {"user": "a"}}')
    assert sipmote_start.should_start(config, flag) == (True, "")
    assert not sipmote_start.button_held(config)  # the "sim" platform: no GPIO to read


def test_a_broken_config_returns_to_the_repl_instead_of_raising():
    config, flag = _fresh()
    _write(config, '{"board": "unix_sim", "sip": {"user": "a", "port": 0}}')
    assert sipmote_start.should_start(config, flag, False) == (True, "")
    assert sipmote_start.run(config, flag, False) is None  # ConfigError printed, no raise
    _write(config, "{not json")
    assert sipmote_start.run(config, flag, True) is None


def test_frozen_main_puts_romfs_ahead_of_frozen_modules():
    for path in ("/main.py", "/config.json", "/noautostart"):
        try:
            os.stat(path)
            skip("this machine has %s: main.py would act on it" % path)
        except OSError:
            pass
    saved = list(sys.path)
    try:
        sys.path[:] = ["", ".frozen", "/lib", "/rom", "/rom/lib"] + saved
        with open(FIRMWARE + "/main.py") as f:
            source = f.read()
        exec(source, {"__name__": "__main__"})  # no /main.py: boots, finds no config
        frozen = sys.path.index(".frozen")
        assert sys.path.index("/rom") < frozen and sys.path.index("/rom/lib") < frozen
        assert sys.path.count("/rom") == 1
    finally:
        sys.path[:] = saved
