"""The relay's SIP socket: an asyncio UDP shell around the sans-I/O ``TransactionLayer``.

The shell owns the socket and the clock and nothing else: every datagram goes to
``layer.receive``, one asyncio timer is kept armed for ``layer.next_deadline()``, and each
transaction event is handed to the transaction user (the relay's ``SipService``):

    tu.on_request(event)          new request (event.transaction None: a 2xx ACK)
    tu.on_stray_response(event)   a 2xx to an INVITE whose transaction is gone: re-ACK it
    tu.on_server_timeout(event)   timer H (no ACK for our error response) or the TU never answered

Responses and timeouts of our own requests go to the callback given to ``send_request``.
A datagram that does not parse is logged (rate-limited) and dropped: with no valid Via
there is nowhere safe to send a 400. An exception in the transaction user is logged and the
endpoint keeps serving.
"""

import asyncio
import logging
import time

from voip.sip.message import MAX_MESSAGE_SIZE
from voip.sip.transaction import TransactionLayer

log = logging.getLogger("sipmote.relay.sip")


class RateLimitedLog:
    """At most `burst` lines per `period_s` for a noisy cause (malformed datagrams, scanners):
    a flood must not fill the disk or slow the loop."""

    def __init__(self, logger, burst=10, period_s=60):
        self.logger = logger
        self.burst = burst
        self.period_s = period_s
        self._window = 0
        self._count = 0
        self._suppressed = 0

    def warning(self, fmt, *args):
        now = time.monotonic()
        if now - self._window >= self.period_s:
            if self._suppressed:
                self.logger.warning("(%d similar messages suppressed)", self._suppressed)
            self._window = now
            self._count = 0
            self._suppressed = 0
        if self._count < self.burst:
            self._count += 1
            self.logger.warning(fmt, *args)
        else:
            self._suppressed += 1


class SipEndpoint(asyncio.DatagramProtocol):
    def __init__(self, tu, t1=500, t2=4000, t4=5000, max_transactions=2048, timer_c=180000):
        self.tu = tu
        self.layer = TransactionLayer(
            t1=t1, t2=t2, t4=t4, max_transactions=max_transactions, timer_c=timer_c
        )
        self.transport = None
        self.local_address = None  # (host, port) actually bound
        self._timer = None
        self._timer_at = None
        self._epoch = time.monotonic()
        self._bad = RateLimitedLog(log)
        self.stats = {"datagrams": 0, "malformed": 0, "oversize": 0, "tu_errors": 0}

    # -- lifecycle ----------------------------------------------------------------------

    async def open(self, host, port):
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: self, local_addr=(host, port))
        return self.local_address

    def connection_made(self, transport):
        self.transport = transport
        self.local_address = transport.get_extra_info("sockname")[:2]
        self.layer.sent_by = self.local_address

    def close(self):
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.transport is not None:
            self.transport.close()
            self.transport = None

    def now_ms(self):
        return int((time.monotonic() - self._epoch) * 1000)

    # -- datagrams ----------------------------------------------------------------------

    def datagram_received(self, data, addr):
        self.stats["datagrams"] += 1
        if len(data) > MAX_MESSAGE_SIZE:
            self.stats["oversize"] += 1
            self._bad.warning("dropped a %d-byte datagram from %s:%d", len(data), *addr[:2])
            return
        if not data.strip(b"\r\n"):
            return  # RFC 5626 keepalive (CRLF ping): nothing to answer over UDP
        self.layer.receive(data, (addr[0], addr[1]), self.now_ms())
        self.pump()

    def error_received(self, exc):
        # ICMP port unreachable from a peer that went away: the transaction timers handle it.
        log.debug("socket error: %s", exc)

    def connection_lost(self, exc):
        self.transport = None

    # -- towards the transaction layer ----------------------------------------------------

    def send_request(self, request, addr, on_result=None):
        """Start a client transaction. `on_result(event)` gets each response event and a
        final "timeout" event. Returns the ClientTransaction."""
        tx = self.layer.send_request(request, addr, self.now_ms())
        tx.context = on_result
        self.pump()
        return tx

    def respond(self, tx, response):
        sent = self.layer.respond(tx, response, self.now_ms())
        self.pump()
        return sent

    def send(self, message, addr):
        """Outside any transaction: the ACK of a 2xx, our own 2xx retransmissions."""
        self.layer.send(message, addr)
        self.pump()

    def pump(self):
        """Deliver events, send what is queued, re-arm the timer. Re-entrant safe."""
        for _ in range(1000):  # each round drains; events create more only a few times
            events = self.layer.events()
            for ev in events:
                try:
                    self._dispatch(ev)
                except Exception:  # noqa: BLE001 - one bad call must not stop the service
                    self.stats["tu_errors"] += 1
                    log.exception("error handling %r", ev)
            self._flush()
            if not events:
                break
        self._arm()

    def _dispatch(self, ev):
        kind = ev.kind
        if kind == "request":
            self.tu.on_request(ev)
        elif kind == "response":
            tx = ev.transaction
            if tx is None:
                self.tu.on_stray_response(ev)
            elif tx.context is not None:
                tx.context(ev)
        elif kind == "timeout":
            tx = ev.transaction
            if tx is not None and tx.is_client:
                if tx.context is not None:
                    tx.context(ev)
            else:
                self.tu.on_server_timeout(ev)
        elif kind == "error":
            self.stats["malformed"] += 1
            src = ev.source or ("?", 0)
            self._bad.warning("malformed SIP from %s:%s dropped: %s", src[0], src[1], ev.error)

    def _flush(self):
        out = self.layer.outgoing()
        if not out:
            return
        if self.transport is None:
            return
        for data, addr in out:
            try:
                self.transport.sendto(data, addr)
            except (OSError, ValueError) as e:
                log.warning("send to %s:%s failed: %s", addr[0], addr[1], e)

    def _arm(self):
        deadline = self.layer.next_deadline()
        if deadline == self._timer_at and self._timer is not None:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = deadline
        if deadline is None or self.transport is None:
            return
        delay = max(0, deadline - self.now_ms() + 1) / 1000  # +1: now_ms() floors
        self._timer = asyncio.get_running_loop().call_later(delay, self._on_timer)

    def _on_timer(self):
        self._timer = None
        self._timer_at = None
        self.layer.tick(self.now_ms())
        self.pump()
