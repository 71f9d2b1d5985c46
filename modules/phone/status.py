# phone.status: what status() shows at the REPL: network, registration, the call, RTP
# counters, jitter, loss, heap. MIT licence.
import gc
import time

from . import log


def collect(phone):
    """A dict of the phone's state (JSON-friendly: the simulator's control port sends it)."""
    gc.collect()
    sip = phone.sip
    call = phone.call
    out = {
        "board": phone.board.name,
        "uptime_s": time.ticks_diff(time.ticks_ms(), phone.boot_ms) // 1000,
        "led": phone.led.state,
        "wifi": {"state": phone.wifi.state, "ip": phone.wifi.ip, "drops": phone.wifi.drops},
        "sip": None,
        "call": None,
        "media": None,
        "calls": {"placed": phone.calls_placed, "answered": phone.calls_answered,
                  "rejected": phone.calls_rejected, "history": phone.history},
        "heap": {"free": gc.mem_free(), "used": gc.mem_alloc()},
        "recent_warnings": ["%.1f %s %s: %s" % r for r in log.recent],
    }
    if sip is not None:
        out["sip"] = sip.status()
    if call is not None:
        out["call"] = {"id": call.call_id, "direction": call.direction, "peer": call.peer,
                       "state": call.state, "age_s": call.age_ms() // 1000,
                       "talk_s": call.talk_ms() // 1000}
    if phone.media is not None:
        out["media"] = phone.media.stats()
    return out


def show(phone):
    """Print status() in a few readable lines."""
    s = collect(phone)
    print("board %s, up %d s, LED %s" % (s["board"], s["uptime_s"], s["led"]))
    w = s["wifi"]
    print("wifi  %s %s (drops %d)" % (w["state"], w["ip"], w["drops"]))
    if s["sip"]:
        sip = s["sip"]
        print("sip   %s, registration: %s" % (sip.get("aor"), sip.get("registration")))
    c = s["call"]
    if c:
        print("call  %s %s %s, %d s (talk %d s)" % (c["direction"], c["peer"], c["state"],
                                                    c["age_s"], c["talk_s"]))
    else:
        print("call  none (placed %d, answered %d)" % (s["calls"]["placed"],
                                                        s["calls"]["answered"]))
    m = s["media"]
    if m:
        print("rtp   %s %s: sent %d, received %d, lost %d, late %d, concealed %d" % (
            m["codec"], m["remote"], m["tx_packets"], m["rx_packets"], m["lost"], m["late"],
            m["concealed"]))
        print("      jitter %d ms, buffer %d ms, underruns %d, %d us/frame (max %d)" % (
            m["jitter_ms"], m["buffer_ms"], m["underruns"], m["cpu_us_per_frame"],
            m["cpu_max_us"]))
    h = s["heap"]
    print("heap  %d used, %d free" % (h["used"], h["free"]))
    for line in s["recent_warnings"]:
        print("warn  " + line)
    return s
