# phone.app: the phone: Wi-Fi, SIP, one call at a time, its audio, the button and the LED.
# MIT licence.
#
#   import phone.app; phone.app.main("/config.json")
#
# Everything runs as asyncio tasks, so Ctrl-C at the REPL (or mpremote) stops the loop with
# the tasks intact: `from phone.repl import *` gives status(), call(), answer(), hangup(),
# digits("123") and resume() to carry on. With micropython-lib's aiorepl installed, a REPL
# runs next to the phone instead.
#
# Call policy:
# - requests (INVITE, OPTIONS...) are accepted only from the registrar, the outbound proxy,
#   the call target's host and the configured allowed_peers; anything else is dropped before
#   the SIP stack sees it, unanswered (phone.sip_task);
# - an INVITE while a call is up gets 486; an INVITE ringing longer than ring_timeout_s gets
#   480; with auto_answer the phone answers at once;
# - a call ends on BYE, the button, hangup(), no RTP for no_rtp_hangup_s, or max_call_s.
import asyncio
import gc
import time

from . import config as config_mod
from . import log
from .board import Board, load_profile
from .led import StatusLed
from .wifi import WifiLink

current = None  # the running Phone, for phone.repl


class Call:
    """What the app knows of the one call it has."""

    def __init__(self, call_id, direction, peer):
        self.call_id = call_id
        self.direction = direction  # "out" or "in"
        self.peer = peer
        self.state = "calling" if direction == "out" else "ringing"
        self.started_ms = time.ticks_ms()
        self.answered_ms = None
        self.sdp = None  # voip.sdp_session.LocalSession
        self.offer = None  # the peer's offer (incoming calls)
        self.end_reason = None

    def age_ms(self):
        return time.ticks_diff(time.ticks_ms(), self.started_ms)

    def talk_ms(self):
        if self.answered_ms is None:
            return 0
        return time.ticks_diff(time.ticks_ms(), self.answered_ms)


class Phone:
    def __init__(self, cfg, board, options=None):
        self.cfg = cfg
        self.board = board
        self.options = options or {}
        if cfg["call"]["auto_call"]:
            self.options.setdefault("call_pending", True)  # call the target once SIP is up
        kind, driver, active_low = board.led_driver()
        self.led = StatusLed(kind, driver, active_low)
        w = cfg["wifi"]
        self.wifi = WifiLink(board.wlan(), w["ssid"], w["password"], w["timeout_s"],
                             w["hostname"], static_ip=cfg["sip"]["local_ip"])
        self.wifi.on_up = self._wifi_up
        self.wifi.on_down = self._wifi_down
        self.sip = None  # phone.sip_task.SipTask while the network is up
        self.call = None
        # made at boot, used by every call (see _call_resources)
        self.session = _call_resources(board, cfg["audio"])  # phone.media.MediaSession
        self.media = None  # the session while a call has audio
        self.media_task = None
        self.history = []  # summaries of finished calls (bounded)
        self.calls_placed = 0
        self.calls_answered = 0
        self.calls_rejected = 0
        self.boot_ms = time.ticks_ms()
        self.done = asyncio.Event()
        self.exit_code = 0
        self.exit_reason = ""
        self.tasks = []

    # --- network and SIP ------------------------------------------------------------------

    def _wifi_up(self, ip):
        from .sip_task import SipTask

        self.session.local_ip = ip
        self.led.set("connecting")
        try:
            self.sip = SipTask(self, self.cfg, ip)
        except OSError as e:
            log.error("sip", "cannot open the SIP socket on %s: %s", ip, e)
            self.led.set("error")
            return
        self._start(self.sip.run(), "sip")
        if not self.sip.registrar:
            self.led.set("idle")
            self._maybe_auto_call()

    def _wifi_down(self):
        self.led.set("connecting")
        self._end_call("network down", send=False)
        if self.sip is not None:
            self.sip.close()
            self.sip = None

    def on_registered(self, expires):
        log.info("sip", "registered (%d s)", expires)
        if self.call is None:
            self.led.set("registered")
        self._maybe_auto_call()

    def on_registration_failed(self, status, reason, retry_in):
        log.warning("sip", "registration failed: %s %s (retry in %s ms)", status, reason,
                    retry_in)
        if self.call is None:
            self.led.set("error")
        if self.options.get("exit_on_register_failure"):
            self.finish(3, "registration failed: %s %s" % (status, reason))

    def _maybe_auto_call(self):
        if self.options.get("call_pending") and self.call is None:
            self.options["call_pending"] = False
            target = self.options.get("call_target") or self.cfg["call"]["target"]
            self.place_call(target)

    # --- calls ------------------------------------------------------------------------------

    def _local_sdp(self):
        from voip.sdp_session import LocalSession

        a = self.cfg["audio"]
        return LocalSession(self.sip.local_ip, a["rtp_port"], codecs=a["codecs"],
                            telephone_event=101, username="sipmote")

    def place_call(self, target=None):
        """Call `target` (default: the configured call target)."""
        target = target or self.cfg["call"]["target"]
        if not target:
            raise ValueError("no call target: pass one or set call.target")
        if self.sip is None:
            raise RuntimeError("not connected")
        if self.call is not None:
            raise RuntimeError("already in a call")
        sdp = self._local_sdp()
        call_id = self.sip.call(target, sdp.offer())
        self.call = Call(call_id, "out", target)
        self.call.sdp = sdp
        self.calls_placed += 1
        self.led.set("calling")
        log.info("call", "calling %s", target)
        return call_id

    def on_incoming(self, call_id, caller, offer, source):
        if self.call is not None:
            log.info("call", "busy: rejecting %s from %s", caller, source[0])
            self.sip.reject(call_id, 486)
            self.calls_rejected += 1
            return
        self.call = Call(call_id, "in", caller)
        self.call.offer = offer
        log.info("call", "incoming call from %s (%s:%d)", caller, source[0], source[1])
        if self.cfg["call"]["auto_answer"]:
            self.answer()
        else:
            self.led.set("ringing")

    def answer(self):
        c = self.call
        if c is None or c.direction != "in" or c.state != "ringing":
            raise RuntimeError("no incoming call to answer")
        from voip.sdp import NoCommonCodec

        c.sdp = self._local_sdp()
        if c.offer is None:
            # no offer in the INVITE: ours goes in the 200, the answer comes in the ACK
            self.sip.answer(c.call_id, c.sdp.offer())
            c.state = "answering"
            self.calls_answered += 1
            return
        try:
            body, media = c.sdp.answer(c.offer)
        except NoCommonCodec as e:
            log.warning("call", "rejecting: %s", e)
            self.sip.reject(c.call_id, 488)
            self._forget_call("no common codec")
            return
        except ValueError as e:
            log.warning("call", "rejecting: bad SDP offer: %s", e)
            self.sip.reject(c.call_id, 400)
            self._forget_call("bad offer")
            return
        self.sip.answer(c.call_id, body)
        self.calls_answered += 1
        self._media_up(media)

    def on_ringing(self, call_id):
        if self.call is not None and self.call.call_id == call_id:
            self.call.state = "ringing"
            log.info("call", "ringing")

    def on_answered(self, call_id, answer_sdp):
        c = self.call
        if c is None or c.call_id != call_id or self.media is not None:
            return  # (an incoming call's ACK: its media is already up)
        if c.direction == "in" and not answer_sdp:
            log.warning("call", "the ACK carried no SDP answer")
            self.hangup("no SDP answer")
            return
        try:
            media = c.sdp.accept_answer(answer_sdp)
        except ValueError as e:
            log.warning("call", "unusable SDP answer: %s", e)
            self.hangup("unusable SDP answer")
            return
        self._media_up(media)

    def on_media_updated(self, call_id, media):
        if self.media is not None and self.call is not None and self.call.call_id == call_id:
            self.media.update(media)

    def _media_up(self, media):
        c = self.call
        c.state = "in_call"
        c.answered_ms = time.ticks_ms()
        self.led.set("in_call")
        log.info("call", "connected: %r", media)
        session = self.session
        try:
            session.start(media)
        except (MemoryError, OSError) as e:
            # No heap for what a call still allocates (or its RTP port is taken): end the
            # call cleanly rather than leave it up without audio, and say why.
            session.stop()
            gc.collect()
            log.error("call", "cannot start the call's audio: %s: %s (%d bytes free)",
                      type(e).__name__, e, gc.mem_free())
            self.hangup("out of memory" if isinstance(e, MemoryError) else "no RTP socket")
            return
        self.media = session
        self.media_task = self._start(session.run(), "media")

    def on_call_ended(self, call_id, reason):
        if self.call is not None and self.call.call_id == call_id:
            self._end_call(reason, send=False)

    def hangup(self, reason="local hangup"):
        if self.call is None:
            return False
        self._end_call(reason, send=True)
        return True

    def _end_call(self, reason, send):
        c = self.call
        if c is None:
            return
        if send and self.sip is not None:
            if c.direction == "in" and c.state == "ringing":
                self.sip.reject(c.call_id, 480 if reason == "ring timeout" else 603)
            else:
                self.sip.hangup(c.call_id)
        stats = None
        if self.media is not None:
            stats = self.media.stats()
            self.media.stop()
            self.media = None
            self.media_task = None
        self._forget_call(reason, stats)

    def _forget_call(self, reason, stats=None):
        c = self.call
        self.call = None
        summary = {
            "direction": c.direction,
            "peer": c.peer,
            "answered": c.answered_ms is not None,
            "talk_ms": c.talk_ms(),
            "reason": reason,
            "media": stats,
        }
        self.history.append(summary)
        if len(self.history) > 8:
            self.history.pop(0)
        log.info("call", "ended: %s after %d ms of talk", reason, summary["talk_ms"])
        if stats:
            log.info("call", "media: sent %d, received %d, lost %d, late %d, jitter %d ms, "
                     "%d us/frame", stats["tx_packets"], stats["rx_packets"], stats["lost"],
                     stats["late"], stats["jitter_ms"], stats["cpu_us_per_frame"])
        if self.sip is not None:
            self.led.set("registered" if self.sip.registered else "idle")
        gc.collect()
        if self.options.get("exit_after_call"):
            ok = summary["answered"] and (stats is None or stats["rx_packets"] > 0)
            self.finish(0 if ok else 4, "call ended: " + reason)

    def send_digits(self, keys, duration_ms=100):
        if self.media is None:
            raise RuntimeError("no call up")
        self.media.send_digits(keys, duration_ms)
        log.info("call", "sending digits %s", keys)

    def button(self):
        """The one button: answer a ringing call, else hang up, else call the target."""
        c = self.call
        if c is not None and c.direction == "in" and c.state == "ringing":
            self.answer()
        elif c is not None:
            self.hangup("button")
        elif self.sip is not None and self.cfg["call"]["target"]:
            self.place_call()

    # --- supervision --------------------------------------------------------------------

    async def _supervise(self):
        cc = self.cfg["call"]
        while True:
            await asyncio.sleep_ms(250)
            c = self.call
            if c is None:
                continue
            if c.state == "ringing" and c.direction == "in":
                if c.age_ms() > cc["ring_timeout_s"] * 1000:
                    self._end_call("ring timeout", send=True)
            elif c.state in ("calling", "ringing") and c.age_ms() > cc["ring_timeout_s"] * 1000:
                self._end_call("no answer", send=True)
            elif self.media is not None:
                limit = cc["no_rtp_hangup_s"] * 1000
                if limit and self.media.silent_ms() > limit:
                    log.warning("call", "no RTP for %d s", cc["no_rtp_hangup_s"])
                    self._end_call("no RTP", send=True)
                elif cc["max_call_s"] and c.talk_ms() > cc["max_call_s"] * 1000:
                    self._end_call("max call time", send=True)

    async def _watch_button(self):
        pin = self.board.button_pin()
        if pin is None:
            return
        b = self.board.profile["button"]
        pressed_level = 0 if b.get("active_low", True) else 1
        down_ms = 0
        while True:
            await asyncio.sleep_ms(20)
            if pin.value() == pressed_level:
                down_ms += 20
            else:
                if down_ms >= 60:  # debounced press, acted on at release
                    log.info("button", "pressed (%d ms)", down_ms)
                    try:
                        self.button()
                    except (RuntimeError, ValueError, MemoryError) as e:
                        log.warning("button", "%s: %s", type(e).__name__, e)
                down_ms = 0

    # --- running ----------------------------------------------------------------------------

    def finish(self, code, reason):
        """Stop the phone (the simulator's --exit-after-call and --duration use this)."""
        if not self.done.is_set():
            self.exit_code = code
            self.exit_reason = reason
            self.done.set()

    def status(self):
        from .status import collect

        return collect(self)

    async def _guard(self, coro, name):
        """Run one of the phone's tasks; if it dies, the phone stops with an error (exit 1)
        rather than carrying on deaf or mute."""
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - reported, then the phone stops
            log.exception(name, "task failed", e)
            self.led.set("error")
            self.finish(1, "%s task failed: %s: %s" % (name, type(e).__name__, e))

    def _start(self, coro, name):
        task = asyncio.create_task(self._guard(coro, name))
        self.tasks = [t for t in self.tasks if not t.done()]  # one media task per call: bounded
        self.tasks.append(task)
        return task

    async def run(self):
        self.led.set("connecting")
        self._start(self.led.run(), "led")
        self._start(self._watch_button(), "button")
        self._start(self._supervise(), "supervisor")
        for coro in self.board.service_tasks():
            self._start(coro, "board")
        for coro in self.options.get("extra_tasks", ()):
            self._start(coro, "extra")
        self._start(self.wifi.run(), "wifi")
        await self.done.wait()
        self.shutdown()
        return self.exit_code

    def shutdown(self):
        if self.call is not None:
            self.hangup("shutdown")
        if self.sip is not None:
            self.sip.close()
            self.sip = None
        for t in self.tasks:
            t.cancel()
        self.tasks = []
        self.led.set("off")


def _call_resources(board, audio_cfg):
    """What every call needs, made at boot: the SIP, SDP and media code, and the one
    MediaSession all calls use (its buffers). In a young heap they pack at the bottom; made at
    the first call they needed contiguous blocks (the qstr pool grows by doubling, the jitter
    ring is 2.5 KB) out of a heap the running phone had split, and a call whose bytes were
    there failed for want of one block (64-bit unix port, 380 KB heap)."""
    from voip import sdp_session  # noqa: F401

    from . import sip_task  # noqa: F401
    from .media import MediaSession

    return MediaSession(board, audio_cfg, "", audio_cfg["rtp_port"])


def build(config_path="/config.json", board_dirs=None, options=None):
    """Load the config and the board profile; return a Phone ready to run."""
    global current
    cfg = config_mod.load(config_path)
    log.set_level(cfg["log_level"])
    profile = load_profile(cfg["board"], board_dirs)
    board = Board(profile)
    log.info("app", "sipmote on %s (%s)", profile["name"], profile.get("title", ""))
    log.info("app", "config: %s", config_mod.dump(cfg))
    current = Phone(cfg, board, options)
    return current


def main(config_path="/config.json", board_dirs=None, options=None):
    """Run the phone until it finishes (simulator options) or Ctrl-C."""
    phone = build(config_path, board_dirs, options)
    try:
        import aiorepl

        phone.options.setdefault("extra_tasks", []).append(aiorepl.task())
    except ImportError:
        pass
    return asyncio.run(phone.run())
