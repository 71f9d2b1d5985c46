# sipmote_start: boot the phone at power-on unless told not to, and keep the REPL usable.
# MIT licence.
#
# main.py calls run(): the one frozen into the sipmote firmware, or the one `sipmote device
# deploy` copies to a stock MicroPython board. In order:
#   1. a file /noautostart exists: say so and return to the REPL. `sipmote device autostart
#      off` (or any `open("/noautostart", "w")`) creates it; deleting it boots the phone again;
#   2. the board's button is held during the first second after boot: the same, for a board
#      whose serial port you cannot reach in time (GPIO0 boards: press it after reset, since
#      holding it during reset selects the ROM download mode instead);
#   3. no config file: say how to write one and return to the REPL;
#   4. otherwise phone.app.main(config) runs the phone. With micropython-lib's aiorepl
#      installed (the sipmote firmware freezes it) a "-->" REPL runs next to the phone and
#      mpremote still reaches the board; Ctrl-D at "-->" stops the phone. Without aiorepl,
#      Ctrl-C stops the phone and gives the normal REPL.
# Whatever the app raises is printed and run() returns, so the board lands at the REPL:
# a broken config can never become a reset loop.
import os
import sys

CONFIG = "/config.json"
NO_AUTOSTART = "/noautostart"
BUTTON_WINDOW_MS = 1000


def _exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def _board_name(config_path):
    # The raw JSON, not phone.config: a config the app would refuse must still let us find
    # the button (and the app then explains what is wrong with it).
    import json

    try:
        with open(config_path) as f:
            return json.loads(f.read()).get("board")
    except (OSError, ValueError, AttributeError):
        return None


def button_held(config_path, window_ms=BUTTON_WINDOW_MS):
    """True if the board's button is pressed (debounced) during the first `window_ms`."""
    name = _board_name(config_path)
    if not name:
        return False
    try:
        from phone.board import load_profile

        profile = load_profile(name)
    except (ImportError, OSError, ValueError):
        return False
    button = profile.get("button")
    if profile.get("platform") != "esp32" or button is None:
        return False
    import time

    try:
        from machine import Pin
    except ImportError:  # a port without GPIO (the unix port)
        return False
    if button.get("pull_up"):
        pin = Pin(button["pin"], Pin.IN, Pin.PULL_UP)
    else:
        pin = Pin(button["pin"], Pin.IN)
    pressed = 0 if button.get("active_low", True) else 1
    print("sipmote: hold the button now to skip starting the phone")
    held = 0
    start = time.ticks_ms()
    while time.ticks_diff(time.ticks_ms(), start) < window_ms:
        held = held + 1 if pin.value() == pressed else 0
        if held >= 3:  # 60 ms of contact: a press, not a glitch
            return True
        time.sleep_ms(20)
    return False


def should_start(config_path=CONFIG, flag_path=NO_AUTOSTART, check_button=True):
    """(start?, why not) for the boot decision above."""
    if _exists(flag_path):
        return False, "%s exists (delete it, or `sipmote device autostart on`)" % flag_path
    if check_button and button_held(config_path):
        return False, "the button was held at boot"
    if not _exists(config_path):
        return False, "no %s: write one with `sipmote device config set` (docs/flashing.md)" % (
            config_path)
    return True, ""


def run(config_path=CONFIG, flag_path=NO_AUTOSTART, check_button=True, options=None):
    """Boot the phone (see the top of this file). Returns the app's exit code or None."""
    start, why = should_start(config_path, flag_path, check_button)
    if not start:
        print("sipmote: not starting the phone: " + why)
        print("sipmote: start it by hand with: import sipmote_start; sipmote_start.run()")
        return None
    try:
        from phone import app

        return app.main(config_path, None, options)
    except KeyboardInterrupt:
        print("sipmote: stopped (Ctrl-C); `from phone.repl import *` then resume() carries on")
    except Exception as e:  # noqa: BLE001 - printed, then the REPL: never a reset loop
        print("sipmote: the phone stopped: %s: %s" % (type(e).__name__, e))
        sys.print_exception(e)
    return None
