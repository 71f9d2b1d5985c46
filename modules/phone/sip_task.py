# phone.sip_task: the SIP socket and the asyncio loop around voip.sip.ua.UserAgent. MIT licence.
#
# The user agent is sans-I/O: this task owns its UDP socket and its clock. Each turn it reads
# what has arrived (select.poll says whether anything has, so an idle phone raises no EAGAIN
# exceptions), feeds the UA, fires its timers, hands its events to the phone and sends what
# it queued; then it sleeps until the UA's next deadline (at most 20 ms, so the phone's own
# requests leave promptly).
#
# Admission: the UA accepts requests only from the registrar, the outbound proxy and the
# hosts given to it; we resolve the call target's host and call.allowed_peers to addresses
# for it. Requests from anyone else are dropped unanswered: toll-fraud scanners learn nothing.
#
# A MemoryError out of the UA (a full or fragmented heap) is logged as "out of memory", the
# collector runs and the loop carries on: the peer retransmits what was lost.
import asyncio
import gc
import select
import time

from voip.sip.message import SipError, Uri
from voip.sip.ua import UserAgent

from . import log, net

try:
    from micropython import const
except ImportError:  # CPython (the type check, the tests' imports)
    def const(x):
        return x

_DRAIN_MAX = 16
# The largest datagram taken. recvfrom(n) allocates n contiguous bytes for every datagram
# (then a copy of its real size), and a tight heap is in small pieces: 16 KB (the parser's
# MAX_MESSAGE_SIZE) was not to be had with 106 KB free; a 4 KB read needed 20 KB more
# heap than a 2 KB one to complete a call (64-bit unix port, docs/device.md). SIP over UDP
# stays under the MTU (RFC 3261 18.1.1: a request over 1300 bytes should go over TCP); PBX
# and relay INVITEs with SDP are 0.6-2 KB.
_RECEIVE_MAX = const(2048)


class MsClock:
    """Milliseconds since start that never wrap (ticks_ms wraps after 2**30 ms)."""

    def __init__(self):
        self.last = time.ticks_ms()
        self.ms = 0

    def now(self):
        t = time.ticks_ms()
        self.ms += time.ticks_diff(t, self.last)
        self.last = t
        return self.ms


def _split_hostport(value, default_port):
    if value.startswith("["):
        end = value.index("]")
        host, rest = value[1:end], value[end + 1 :]
        return host, int(rest[1:]) if rest.startswith(":") else default_port
    if value.count(":") == 1:
        host, port = value.split(":")
        return host, int(port)
    return value, default_port


def _resolved(value, default_port):
    """(ip, port) for a "host[:port]" config value, or None when empty or unresolvable."""
    if not value:
        return None
    host, port = _split_hostport(value, default_port)
    ip = net.resolve_ip(host)
    if ip is None:
        log.warning("sip", "cannot resolve %s", host)
        return None
    return ip, port


class SipTask:
    def __init__(self, phone, cfg, local_ip):
        s, c = cfg["sip"], cfg["call"]
        self.phone = phone
        self.local_ip = local_ip
        self.local_port = s["local_port"]
        self.clock = MsClock()
        registrar = _resolved(s["registrar"], s["port"])
        proxy = _resolved(s["outbound_proxy"], s["port"])
        allowed = []
        hosts = list(c["allowed_peers"])
        if c["target"]:
            try:
                hosts.append(Uri.parse(c["target"]).host)
            except SipError:
                pass
        for host in hosts:
            ip = net.resolve_ip(host)
            if ip is None:
                log.warning("sip", "allowed peer %s does not resolve", host)
            elif ip not in allowed:
                allowed.append(ip)
        self.registrar = registrar
        self.allowed = allowed
        ua_cfg = {
            "user": s["user"],
            "password": s["password"],
            "auth_user": s["auth_user"] or None,
            "display_name": s["display_name"] or None,
            "local": (local_ip, self.local_port),
            "domain": s["domain"] or None,
            "registrar": registrar,
            "outbound_proxy": proxy,
            "allowed_hosts": allowed,
            "expires": s["expires"],
            "ring_timeout_ms": c["ring_timeout_s"] * 1000 + 5000,  # the app rejects first
        }
        self.sock = net.udp_socket(local_ip, self.local_port)
        self.poller = select.poll()
        self.poller.register(self.sock, select.POLLIN)
        self.ua = UserAgent(ua_cfg, answer_offer=self._answer_reoffer,
                            max_transactions=s["max_transactions"])
        self.running = True
        self.out_of_memory = 0  # MemoryErrors the loop recovered from
        self.too_big = 0  # datagrams over _RECEIVE_MAX, dropped
        self.reg_state = "none" if registrar is None else "registering"
        self.last_reg = None
        log.info("sip", "on %s:%d as %s; registrar %s; accepting calls from %s", local_ip,
                 self.local_port, self.ua.contact, registrar or "none",
                 ", ".join(self.ua.allowed_hosts) or "nobody")
        if registrar is not None:
            self.ua.register(self.clock.now())

    @property
    def registered(self):
        return self.ua.registered

    # --- actions for the phone (each sends at once) ---------------------------------------

    def call(self, target, offer):
        call_id = self.ua.call(target, offer, self.clock.now())
        self.flush()
        return call_id

    def answer(self, call_id, body):
        ok = self.ua.answer(call_id, body, self.clock.now())
        self.flush()
        return ok

    def reject(self, call_id, status):
        ok = self.ua.reject(call_id, status, self.clock.now())
        self.flush()
        return ok

    def hangup(self, call_id):
        ok = self.ua.hangup(call_id, self.clock.now())
        self.flush()
        return ok

    def close(self):
        """Leave: un-REGISTER (best effort, one datagram) and close the socket."""
        if not self.running:
            return
        self.running = False
        try:
            if self.ua.registered:
                self.ua.unregister(self.clock.now())
                self.flush()
        except OSError:
            pass
        self.sock.close()

    def status(self):
        return {
            "aor": "sip:%s@%s" % (self.ua.user, self.ua.domain),
            "contact": self.ua.contact,
            "registrar": "%s:%d" % self.registrar if self.registrar else None,
            "registration": self.reg_state,
            "last_registration": self.last_reg,
            "allowed": self.ua.allowed_hosts,
            "stats": dict(self.ua.stats),
            "transactions": len(self.ua.layer),
            "max_transactions": self.ua.layer.max_transactions,
            "overload": self.ua.layer.stats["overload"],
            "out_of_memory": self.out_of_memory,
            "too_big": self.too_big,
        }

    # --- the loop -------------------------------------------------------------------------

    def flush(self):
        for data, addr in self.ua.outgoing():
            try:
                self.sock.sendto(data, net.sockaddr(addr[0], addr[1]))
            except OSError as e:
                log.warning("sip", "send to %s:%d failed: %s", addr[0], addr[1], e)

    def _drain(self, now):
        for _ in range(_DRAIN_MAX):
            ready = False
            for _obj, _ev in self.poller.ipoll(0):
                ready = True
            if not ready:
                return
            try:
                data, addr = self.sock.recvfrom(_RECEIVE_MAX + 1)
            except OSError:
                return
            if len(data) > _RECEIVE_MAX:
                self.too_big += 1  # (truncated by the socket: nothing to parse or answer)
                log.warning("sip", "dropped a datagram over %d bytes from %s", _RECEIVE_MAX,
                            net.peer(addr)[0])
                continue
            self.ua.receive(data, net.peer(addr), now)

    def _answer_reoffer(self, call_id, offer):
        """A re-INVITE: answer it from the call's SDP session (None -> 488)."""
        c = self.phone.call
        if c is None or c.call_id != call_id or c.sdp is None:
            return None
        try:
            if offer is None:
                return c.sdp.offer()  # the answer comes in the ACK: media_updated
            body, media = c.sdp.answer(offer)
        except ValueError as e:
            log.warning("sip", "re-INVITE refused: %s", e)
            return None
        self.phone.on_media_updated(call_id, media)
        return body

    def _dispatch(self):
        p = self.phone
        for ev in self.ua.events():
            k = ev.kind
            log.debug("sip", "event %s %s %s %s", k, ev.call_id, ev.status, ev.reason)
            if k == "registered":
                self.reg_state = "registered"
                self.last_reg = ev.expires
                p.on_registered(ev.expires)
            elif k == "registration_failed":
                self.reg_state = "failed %s" % ev.status
                p.on_registration_failed(ev.status, ev.reason, ev.retry_in)
            elif k == "unregistered":
                self.reg_state = "unregistered"
            elif k == "incoming_call":
                p.on_incoming(ev.call_id, ev.remote_uri, ev.remote_sdp, ev.source)
            elif k == "ringing":
                p.on_ringing(ev.call_id)
            elif k == "answered":
                p.on_answered(ev.call_id, ev.remote_sdp)
            elif k == "call_failed":
                p.on_call_ended(ev.call_id, "failed: %s %s" % (ev.status, ev.reason or ""))
            elif k == "call_ended":
                p.on_call_ended(ev.call_id, ev.reason or "ended %s" % ev.status)
            elif k == "media_updated":
                c = p.call
                if c is not None and c.call_id == ev.call_id and c.sdp is not None:
                    if c.sdp.last_offer is not None and ev.remote_sdp:
                        try:
                            p.on_media_updated(ev.call_id, c.sdp.accept_answer(ev.remote_sdp))
                        except ValueError as e:
                            log.warning("sip", "re-INVITE answer unusable: %s", e)

    def _turn(self):
        now = self.clock.now()
        self._drain(now)
        self.ua.tick(now)
        self._dispatch()
        self.flush()

    def _out_of_memory(self):
        # The UA lets MemoryError through rather than count it as a bad datagram: what was
        # being handled is lost, and the peer's retransmission (UDP: T1 doubling) brings it
        # back once the collector has made room. Swallowed, a call on a tight heap would just
        # never connect, with nothing in the log.
        self.out_of_memory += 1
        gc.collect()
        n = self.out_of_memory
        if n & (n - 1) == 0:  # the 1st, 2nd, 4th, 8th...: a heap that stays full cannot flood
            log.error("sip", "out of memory: collected, %d bytes free (%d so far)",
                      gc.mem_free(), n)

    async def run(self):
        try:
            while self.running:
                wait = 20
                try:
                    self._turn()
                    deadline = self.ua.next_deadline()
                    if deadline is not None:
                        wait = min(20, max(0, deadline - self.clock.now()))
                except MemoryError:
                    self._out_of_memory()  # (and a full 20 ms for the others to free some)
                await asyncio.sleep_ms(wait)
        except Exception as e:  # noqa: BLE001 - logged; the phone shows an error
            log.exception("sip", "SIP task stopped", e)
            self.phone.led.set("error")
