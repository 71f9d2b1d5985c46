# phone.wifi.WifiLink against a scripted station interface: timeouts, backoff doubling and its
# reset, reconnection after a drop with the up/down callbacks the app restarts SIP from, and
# the password never reaching a log line.
import asyncio

from phone import log, wifi

RUNTIMES = ("micropython",)


class ScriptedWlan:
    """Fails `failures` connects, then connects; drops the link when told."""

    def __init__(self, failures):
        self.failures = failures
        self.connected = False
        self.connects = []
        self.active_calls = 0

    def active(self, on):
        self.active_calls += 1

    def connect(self, ssid, password):
        self.connects.append((ssid, password))
        if len(self.connects) > self.failures:
            self.connected = True

    def isconnected(self):
        return self.connected

    def disconnect(self):
        self.connected = False

    def status(self):
        return 201  # STAT_NO_AP_FOUND on the ESP32 port

    def ifconfig(self):
        return ("10.0.0.42", "255.255.255.0", "10.0.0.1", "10.0.0.1")


def test_backoff_then_up_then_drop_then_up_again():
    wlan = ScriptedWlan(failures=2)
    link = wifi.WifiLink(wlan, "home", "hunter2-secret", timeout_s=1, backoff_ms=10,
                         backoff_max_ms=15, poll_ms=10)
    link.timeout_ms = 200  # keep the test short
    events = []
    link.on_up = lambda ip: events.append(("up", ip))
    link.on_down = lambda: events.append(("down",))
    lines = []
    log.set_level("debug")

    async def main():
        task = asyncio.create_task(link.run())
        for _ in range(200):
            await asyncio.sleep_ms(10)
            if events:
                break
        assert events == [("up", "10.0.0.42")]
        assert link.state == "up" and link.attempts == 3
        wlan.connected = False  # the AP goes away
        for _ in range(100):
            await asyncio.sleep_ms(10)
            if len(events) >= 3:
                break
        task.cancel()

    import builtins

    real_print = builtins.print
    builtins.print = lambda *a, **k: lines.append(" ".join(str(x) for x in a))
    try:
        asyncio.run(main())
    finally:
        builtins.print = real_print
        log.set_level("info")
    assert events == [("up", "10.0.0.42"), ("down",), ("up", "10.0.0.42")], events
    assert link.drops == 1
    assert wlan.connects[0] == ("home", "hunter2-secret")
    text = "\n".join(lines)
    assert "retrying in 10 ms" in text and "retrying in 15 ms" in text  # doubled, capped
    assert "hunter2" not in text


def test_simulator_link_is_up_at_once():
    link = wifi.WifiLink(None, "", "", static_ip="127.0.0.1")
    got = []
    link.on_up = got.append
    asyncio.run(link.run())
    assert got == ["127.0.0.1"] and link.state == "up"
