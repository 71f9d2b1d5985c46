"""One call through the relay: its dialog, its RTP port and its media session.

A ``Call`` goes ``setup -> answered -> confirmed -> ended`` (inbound: we answer a device's
INVITE) or ``setup -> ringing -> confirmed -> ended`` (outbound: we ring a registered device).
Whatever ends it (BYE either way, CANCEL, the backend closing, no ACK, relay shutdown),
``end()`` runs once and releases everything the call held: the media session and its backend
connection, the RTP socket, the port, the 2xx retransmission timer, its entry in the
service's table.

The media half is reached through ``service.media_factory(call)``, which returns an object
with ``async start()``, ``async stop(reason)`` and an ``ended`` future (set by start) that resolves
with a reason string when the media side ends the call by itself, e.g. its backend went away.
"""

import asyncio
import contextlib
import logging

from voip.sip.dialog import Dialog
from voip.sip.message import SipError
from voip.sip.transaction import build_cancel

from .calllog import CallLog

log = logging.getLogger("sipmote.relay.call")

SETUP = "setup"
RINGING = "ringing"
ANSWERED = "answered"  # inbound: 200 sent, waiting for the ACK
CONFIRMED = "confirmed"
ENDED = "ended"


class Call:
    def __init__(self, service, call_id, direction, agent, peer, user=None):
        self.service = service
        self.call_id = call_id
        self.direction = direction  # "in" (device called us) or "out" (we rang a device)
        self.agent = agent  # config Agent
        self.peer = peer  # (host, port) the INVITE came from / went to
        self.user = user  # the authenticated device, or None (allowlist, PBX)
        self.state = SETUP
        self.dialog = None
        self.destination = None  # where in-dialog requests go
        self.invite = None  # the INVITE (ours or theirs)
        self.invite_tx = None
        self.local_tag = None
        self.rtp_socket = None
        self.rtp_port = None
        self.sdp = None  # voip.sdp_session.LocalSession
        self.media_info = None  # voip.sdp.Media: codec, remote address
        self.media = None  # the media half's session
        self.setup_task = None
        self.answered = None  # future: outbound call answered (True) or failed (exception)
        self.end_reason = None
        self.ended = asyncio.get_running_loop().create_future()
        self._ok = None  # our 2xx, retransmitted until the ACK
        self._ok_timer = None
        self._ok_interval = 0
        self._ok_deadline = 0
        self._media_watch = None
        # console only until the media session exists; then its per-call JSON-lines log
        self.log = CallLog(call_id, None)
        self.started = service.endpoint.now_ms()

    def __repr__(self):
        return "<Call %s %s %s>" % (self.direction, self.call_id, self.state)

    @property
    def codec(self):
        return self.media_info.codec if self.media_info is not None else None

    def summary(self):
        return {
            "call_id": self.call_id,
            "direction": self.direction,
            "agent": self.agent.name,
            "user": self.user,
            "peer": "%s:%d" % tuple(self.peer),
            "state": self.state,
            "codec": self.codec,
            "rtp_port": self.rtp_port,
        }

    # -- media ----------------------------------------------------------------------------

    async def start_media(self):
        """Create and start the media session; raises when the backend cannot serve us."""
        self.media = self.service.media_factory(self)
        await self.media.start()
        done = getattr(self.media, "ended", None)
        if done is not None:
            self._media_watch = asyncio.ensure_future(self._watch_media(done))

    async def _watch_media(self, done):
        try:
            reason = await done
        except asyncio.CancelledError:
            return
        except Exception as e:  # noqa: BLE001 - the media side failed: end the call
            reason = "media error: %s" % e
        if self.state != ENDED:
            self.end(reason or "media session ended", send_bye=True)

    # -- inbound: 2xx retransmission until the ACK (RFC 3261 13.3.1.4, RFC 6026) ------------

    def send_ok(self, tx, response):
        self._ok = response
        self.service.endpoint.respond(tx, response)
        t1 = self.service.endpoint.layer.t1
        self._ok_interval = t1
        self._ok_deadline = self.service.endpoint.now_ms() + 64 * t1
        self._arm_ok()

    def _arm_ok(self):
        loop = asyncio.get_running_loop()
        self._ok_timer = loop.call_later(self._ok_interval / 1000, self._resend_ok)

    def _resend_ok(self):
        self._ok_timer = None
        if self.state != ANSWERED:
            return
        endpoint = self.service.endpoint
        if endpoint.now_ms() >= self._ok_deadline:
            self.end("no ACK for our 200 OK", send_bye=True)
            return
        endpoint.send(self._ok, self.invite_tx.response_addr)
        self._ok_interval = min(self._ok_interval * 2, endpoint.layer.t2)
        self._arm_ok()

    def on_ack(self, request):
        if self.state == ANSWERED:
            self.state = CONFIRMED
            self._stop_ok_timer()
            self.log.event("confirmed")

    def _stop_ok_timer(self):
        if self._ok_timer is not None:
            self._ok_timer.cancel()
            self._ok_timer = None

    # -- outbound ---------------------------------------------------------------------------

    def on_invite_result(self, ev):
        """Responses (and the timeout) of our INVITE to a device."""
        if ev.kind == "timeout":
            self._fail("no answer from %s:%d" % tuple(self.peer), 408)
            return
        resp = ev.response
        status = resp.status
        if status < 200:
            if self.state == SETUP and status > 100:
                self.state = RINGING
                self.log.event("ringing", status=status)
            return
        if status >= 300:
            self._fail("device answered %d %s" % (status, resp.reason), status)
            return
        if self.state == ENDED:
            self._ack_stray(resp)  # a 2xx after we gave up: ACK it, then hang up properly
            return
        if self.dialog is not None:
            self.resend_ack(resp)  # retransmitted 2xx: our ACK was lost
            return
        try:
            self.dialog = Dialog.from_uac(self.invite, resp, self.service.contact_uri(self))
            self.media_info = self.sdp.accept_answer(resp.body)
        except (SipError, ValueError) as e:
            self.dialog = self.dialog or _dialog_or_none(self.invite, resp, self)
            self._send_ack(resp)
            if self.dialog is not None:
                self.state = CONFIRMED  # the 2xx made a dialog: it must be ended with a BYE
            if self.answered is not None and not self.answered.done():
                self.answered.set_exception(ValueError("unusable answer: %s" % e))
            self.end("unusable answer: %s" % e, send_bye=self.dialog is not None)
            return
        if not self.dialog.route_set:
            self.destination = tuple(self.peer)  # the device's registered source (NAT-safe)
        else:
            self.destination = self.dialog.next_hop()
        self._send_ack(resp)
        self.state = CONFIRMED
        self.log.event("answered", codec=self.codec, say="device answered (%s)" % self.codec)
        self.setup_task = asyncio.ensure_future(self._start_outbound_media())

    async def _start_outbound_media(self):
        try:
            await self.start_media()
        except Exception as e:  # noqa: BLE001 - whatever the backend raised ends the call
            self.end("backend unavailable: %s" % e, send_bye=True)
            if self.answered is not None and not self.answered.done():
                self.answered.set_exception(OSError("backend unavailable: %s" % e))
            return
        if self.answered is not None and not self.answered.done():
            self.answered.set_result(True)

    def _send_ack(self, resp):
        ack = self.dialog.ack(self.invite.cseq[0]) if self.dialog else None
        if ack is None:
            return
        self._ack = ack
        self.service.send_in_dialog(ack, self.destination or tuple(self.peer))

    def resend_ack(self, resp):
        ack = getattr(self, "_ack", None)
        if ack is not None:
            self.service.endpoint.send(ack, self.destination or tuple(self.peer))

    def _ack_stray(self, resp):
        try:
            dialog = Dialog.from_uac(self.invite, resp, self.service.contact_uri(self))
        except SipError:
            return
        self.service.endpoint.send(dialog.ack(self.invite.cseq[0]), tuple(self.peer))
        bye = dialog.request("BYE")
        self.service.endpoint.send_request(bye, tuple(self.peer))

    def _fail(self, reason, status):
        if self.answered is not None and not self.answered.done():
            self.answered.set_exception(LookupError(reason))
        self.end(reason, send_bye=False)

    def cancel(self):
        """We give up ringing: CANCEL the INVITE (RFC 3261 9.1), the 487 ends the call."""
        if self.state not in (SETUP, RINGING) or self.invite_tx is None:
            return
        with contextlib.suppress(Exception):
            self.service.endpoint.send_request(build_cancel(self.invite), tuple(self.peer))

    # -- the end ----------------------------------------------------------------------------

    def end(self, reason, send_bye=True):
        """End the call once: BYE if asked and a dialog exists, then release everything."""
        if self.state == ENDED:
            return
        was = self.state
        self.state = ENDED
        self.end_reason = reason
        self._stop_ok_timer()
        if send_bye and self.dialog is not None and was in (ANSWERED, CONFIRMED):
            try:
                bye = self.dialog.request("BYE", extra=(("Reason", 'SIP;text="%s"' % _q(reason)),))
                self.service.send_in_dialog(bye, self.destination or self.dialog.next_hop())
            except Exception as e:  # noqa: BLE001 - release the rest anyway
                log.warning("[%s] could not send BYE: %s", self.call_id, e)
        if self.setup_task is not None and not self.setup_task.done():
            self.setup_task.cancel()
        if self._media_watch is not None and not self._media_watch.done():
            self._media_watch.cancel()
        level = logging.INFO if was in (ANSWERED, CONFIRMED) else logging.WARNING
        if self.media is None:  # else the media session logs "ended" with its figures
            self.log.event("ended", say="call ended: %s" % reason, level=level, reason=reason)
        else:
            self.log.event("sip_end", reason=reason, state=was)
        self.service.forget(self)
        asyncio.ensure_future(self._release())

    async def _release(self):
        try:
            if self.media is not None:
                try:
                    await asyncio.wait_for(self.media.stop(self.end_reason), 5)
                except Exception as e:  # noqa: BLE001
                    log.warning("[%s] media stop: %s", self.call_id, e)
        finally:
            self.close_rtp()
            self.log.close()
            if not self.ended.done():
                self.ended.set_result(self.end_reason)

    def close_rtp(self):
        if self.rtp_socket is not None:
            self.rtp_socket.close()
            self.rtp_socket = None
        if self.rtp_port is not None:
            self.service.ports.release(self.rtp_port)
            self.rtp_port = None


def _q(text):
    return str(text).replace("\\", "").replace('"', "'")[:120]


def _dialog_or_none(invite, resp, call):
    try:
        return Dialog.from_uac(invite, resp, call.service.contact_uri(call))
    except SipError:
        return None
