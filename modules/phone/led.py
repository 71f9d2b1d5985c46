# phone.led: the status LED shows what the phone is doing. MIT licence.
#
#   state        RGB LED                 single LED
#   connecting   blue, blinking          slow blink
#   idle         dim green (or no SIP    off
#                registrar: dim white)
#   registered   dim green               off
#   ringing      yellow, fast blink      fast blink
#   calling      cyan, blinking          fast blink
#   in_call      green                   on
#   error        red, slow blink         double blink
#
# set(state) changes it at once; run() is the asyncio task that blinks. Every change is also
# a log line, which is how the simulator's LED is seen.
import asyncio

from . import log

# state -> (rgb, blink period in 100 ms ticks (0 = steady), pattern for a single LED)
_STATES = {
    "off": ((0, 0, 0), 0, 0),
    "connecting": ((0, 0, 40), 10, 10),
    "idle": ((6, 6, 6), 0, 0),
    "registered": ((0, 12, 0), 0, 0),
    "ringing": ((40, 30, 0), 3, 3),
    "calling": ((0, 30, 30), 5, 3),
    "in_call": ((0, 50, 0), 0, -1),
    "error": ((50, 0, 0), 10, 20),
}


class StatusLed:
    def __init__(self, kind=None, driver=None, active_low=False):
        self.kind = kind  # "rgb", "gpio" or None
        self.driver = driver
        self.active_low = active_low
        self.state = "off"
        self._tick = 0

    def set(self, state):
        if state not in _STATES:
            raise ValueError("no LED state %r" % state)
        if state != self.state:
            self.state = state
            self._tick = 0
            log.debug("led", state)
            self._show(True)

    def _show(self, lit):
        if self.driver is None:
            return
        rgb, _, pattern = _STATES[self.state]
        if self.kind == "rgb":
            self.driver[0] = rgb if lit else (0, 0, 0)
            self.driver.write()
        else:
            on = lit and (pattern != 0)
            self.driver.value((not on) if self.active_low else on)

    async def run(self):
        while True:
            await asyncio.sleep_ms(100)
            _, period, pattern = _STATES[self.state]
            if self.kind == "gpio" and pattern > 0:
                period = pattern
            if period <= 0:
                continue
            self._tick = (self._tick + 1) % (2 * period)
            if self._tick == 0:
                self._show(True)
            elif self._tick == period:
                self._show(False)
