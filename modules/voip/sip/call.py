# voip.sip.call: one call of the user agent: INVITE (both ways), CANCEL, ACK, BYE, re-INVITE.
# MIT licence.
"""The per-call state machine behind voip.sip.ua.UserAgent (see ua.py for the public API).

A Call talks to the UA's TransactionLayer and reports through ua._emit(). Its ClientTransactions
carry a bound method in `.context`; the UA routes requests of the call's dialog here. States:

  outgoing: CALLING (INVITE sent) -> EARLY (1xx) -> CONFIRMED (2xx, ACK sent)
  incoming: RINGING (180 sent) -> ANSWERING (200 sent, retransmitted until ACK) -> CONFIRMED
  ENDING: the application's call is over (call_ended/call_failed emitted); the signalling still
  finishes (CANCEL -> 487, a late 2xx is ACKed and BYEd, ACK awaited before a BYE) and the
  object lingers 64*T1 to re-ACK retransmitted 2xx; then ua drops it.
"""

import os

from voip.sip.dialog import CONFIRMED as DIALOG_CONFIRMED
from voip.sip.dialog import Dialog
from voip.sip.message import Request, SipError, new_tag
from voip.sip.registration import is_stale, pick_challenge
from voip.sip.transaction import build_cancel
from voip.sip.uri import format_host

CALLING = "calling"
EARLY = "early"
RINGING = "ringing"
ANSWERING = "answering"
CONFIRMED = "confirmed"
ENDING = "ending"

_MAX_AUTH = 3  # challenges answered per request (one fresh plus stale retries)


def _rand(lo, hi):
    r = os.urandom(2)
    return lo + (hi - lo) * (r[0] * 256 + r[1]) // 65535


class _OkResend:
    # A 2xx to an INVITE, resent by the UA core until the ACK (RFC 3261 13.3.1.4, RFC 6026):
    # T1 doubling up to T2; after 64*T1 without ACK the dialog is ended with a BYE.
    def __init__(self, data, addr, cseq, now_ms, t1, t2):
        self.data = data
        self.addr = addr
        self.cseq = cseq
        self.interval = t1
        self.cap = t2
        self.next_at = now_ms + t1
        self.give_up_at = now_ms + 64 * t1


class Call:
    def __init__(self, ua, call_id, outgoing):
        self.ua = ua
        self.call_id = call_id
        self.outgoing = outgoing
        self.state = None
        self.dialog = None
        self.local_tag = new_tag()
        self.remote_uri = None
        self.remote_sdp = None
        self.local_sdp = None
        self.source = None
        self.invite = None  # the initial INVITE (sent or received)
        self.invite_tx = None
        self.ack_data = {}  # INVITE CSeq -> our ACK of its 2xx (bytes), to re-ACK
        self.cancel_wanted = False
        self.cancel_sent = False
        self.provisional = False  # any 1xx: a CANCEL may go (9.1)
        self.bye_wanted = False
        self.ok = None  # _OkResend while a 2xx waits for its ACK
        self.offer_tx = None  # an incoming re-INVITE waiting for ua.answer()
        self.offer_req = None
        self.reinvite = None  # our re-INVITE in progress: (request, tx)
        self.reinvite_sdp = None
        self.retry_at = None  # our re-INVITE again after a 491
        self.ring_until = None
        self.offer_until = None
        self.linger_until = None
        self.auth_count = 0
        self.challenges = {}  # credentials header name -> [challenge, nonce count]

    def __repr__(self):
        return "<Call %s %s>" % (self.call_id, self.state)

    # -- timers ------------------------------------------------------------------------------

    def deadline(self):
        best = None
        for t in (
            self.ok.next_at if self.ok else None,
            self.ok.give_up_at if self.ok else None,
            self.retry_at,
            self.ring_until,
            self.offer_until,
            self.linger_until,
        ):
            if t is not None and (best is None or t < best):
                best = t
        return best

    def tick(self, now):
        ok = self.ok
        if ok is not None:
            if now >= ok.give_up_at:
                self.ok = None
                self._end_with_bye("call_ended", 408, "no ACK for our 200", now)
            elif now >= ok.next_at:
                self.ua.layer.send(ok.data, ok.addr)
                ok.interval = min(ok.interval * 2, ok.cap)
                ok.next_at = now + ok.interval
        if self.ring_until is not None and now >= self.ring_until:
            self.ring_until = None
            self.reject(480, now, "ring_timeout")
        if self.offer_until is not None and now >= self.offer_until:
            self._answer_offer(None, now)
        if self.retry_at is not None and now >= self.retry_at:
            self.retry_at = None
            self.update_media(self.reinvite_sdp, now)
        if self.linger_until is not None and now >= self.linger_until:
            self.linger_until = None
            self.ua._forget(self)

    # -- endings -----------------------------------------------------------------------------

    def _finish(self, kind, status, reason, now):
        """The application's call is over: say it once, then linger for the signalling."""
        if self.state != ENDING:
            self.state = ENDING
            self.ua._emit(kind, self, status=status, reason=reason)
        self.ring_until = self.offer_until = self.retry_at = None
        self.linger_until = now + 64 * self.ua.layer.t1

    def _end_with_bye(self, kind, status, reason, now):
        self._finish(kind, status, reason, now)
        self.ok = None
        if self.dialog is not None and self.dialog.state == DIALOG_CONFIRMED:
            self._send_in_dialog("BYE", b"", now)

    def hangup(self, now):
        if self.state == ENDING:
            return False
        if self.state == CALLING or self.state == EARLY:
            # 9.1: no CANCEL before a provisional response; else it goes when one arrives.
            self.cancel_wanted = True
            if self.provisional:
                self._send_cancel(now)
            self._finish("call_ended", None, "local_hangup", now)
        elif self.state == RINGING:
            self.reject(603, now, "local_hangup")
        elif self.state == ANSWERING:
            # 15: no BYE before the ACK of our 2xx (or its timeout).
            self.bye_wanted = True
            self._finish("call_ended", None, "local_hangup", now)
        else:
            self._end_with_bye("call_ended", None, "local_hangup", now)
        return True

    # -- requests we send --------------------------------------------------------------------

    def _dest(self):
        proxy = self.ua.outbound_proxy
        if proxy is not None:
            return proxy
        if self.dialog is not None:
            return self.dialog.next_hop()
        return self.ua.target_address(self.invite.uri)

    def _send(self, req, now, handler):
        try:
            tx = self.ua.layer.send_request(req, self._dest(), now)
        except MemoryError:
            raise
        except Exception:  # noqa: BLE001 - a full table or an unroutable target
            self.ua.stats["send_failures"] += 1
            return None
        tx.context = handler
        return tx

    def _send_in_dialog(self, method, body, now, authorize=False):
        req = self.dialog.request(method, body, "application/sdp" if body else None)
        self.ua.decorate(req)
        if authorize:
            self._authorize(req)
        return req, self._send(req, now, self._on_bye if method == "BYE" else self._on_reinvite)

    def _challenged(self, resp, req):
        """Keep the challenge of a 401/407 to `req`; False when answering it makes no sense.

        One fresh challenge per realm (a second means wrong credentials) plus stale ones. The
        challenges are kept (a proxy's and the callee's) so that every retry carries all the
        credentials, each with its next nonce count."""
        picked = pick_challenge(resp)
        if picked is None or self.auth_count >= _MAX_AUTH:
            return False
        name, challenge = picked
        if req.get(name) is not None and not is_stale(challenge):
            return False
        self.auth_count += 1
        self.challenges[name] = [challenge, 0]
        return True

    def _authorize(self, req):
        from voip.sip.digest import authorization  # (loaded at the first challenge)

        ua = self.ua
        for name in list(self.challenges):
            entry = self.challenges[name]
            entry[1] += 1
            try:
                value = authorization(entry[0], req.method, req.uri, ua.auth_user, ua.password,
                                      nc=entry[1])
            except (SipError, ValueError, KeyError):
                continue
            req.remove(name)
            req.add(name, value)

    # -- outgoing call (UAC) -----------------------------------------------------------------

    def start(self, target, sdp, now):
        self.state = CALLING
        self.remote_uri = target
        self.local_sdp = sdp
        ua = self.ua
        req = Request("INVITE", target)
        if ua.outbound_proxy is not None:
            req.add("Route", "<sip:%s;lr>" % format_host(*ua.outbound_proxy))
        req.add("Max-Forwards", "70")
        req.add("From", "%s;tag=%s" % (ua.local_party(), self.local_tag))
        req.add("To", "<%s>" % target)
        req.add("Call-ID", self.call_id)
        req.add("CSeq", "1 INVITE")
        req.add("Contact", "<%s>" % ua.contact)
        if sdp:
            req.add("Content-Type", "application/sdp")
        ua.decorate(req)
        req.body = sdp
        self._send_invite(req, now)

    def _send_invite(self, req, now):
        self.invite = req
        self.invite_tx = self._send(req, now, self._on_invite)
        if self.invite_tx is None:
            self._finish("call_failed", 503, "cannot send INVITE", now)

    def _on_invite(self, ev):
        now = ev.now_ms
        if ev.kind == "timeout":
            if self.state != ENDING:
                self._finish("call_failed", 408, "no answer to INVITE", now)
            return
        resp = ev.response
        status = resp.status
        if status < 200:
            if self.cancel_wanted:
                if not self.cancel_sent:
                    self._send_cancel(now)
                return
            self.provisional = True
            if status > 100 and self.state == CALLING:
                self.state = EARLY
                self.ua._emit("ringing", self, status=status, reason=resp.reason,
                              remote_sdp=resp.body or None)
        elif status < 300:
            self._on_2xx(resp, now)
        elif (status == 401 or status == 407) and self.state != ENDING:
            if not self._challenged(resp, self.invite):
                self._finish("call_failed", status, resp.reason, now)
                return
            old = self.invite
            req = Request("INVITE", old.uri, [(n, v) for n, v in old.headers if n != "Via"])
            req.set("CSeq", "%d INVITE" % (old.cseq[0] + 1))
            self._authorize(req)
            req.body = old.body
            self._send_invite(req, now)
        elif self.cancel_wanted:
            self._finish("call_ended", status, "cancelled", now)
        else:
            self._finish("call_failed", status, resp.reason, now)

    def _on_2xx(self, resp, now):
        """A 2xx to one of our INVITEs (first, retransmitted, forked or late)."""
        cseq = resp.cseq[0]
        if cseq in self.ack_data:
            self.ua.layer.send(self.ack_data[cseq], self._dest())  # our ACK was lost
            return
        if self.invite is None or cseq != self.invite.cseq[0]:
            return  # a re-INVITE's 2xx goes to _on_reinvite
        contact = self.ua.contact
        try:
            dialog = Dialog.from_uac(self.invite, resp, contact)
        except SipError as e:
            # A 2xx we cannot even ACK (no To tag, garbage Record-Route): give the call up;
            # the far end times out waiting for the ACK and ends its side.
            if self.dialog is None:
                self._finish("call_failed", 502, "unusable 2xx: %s" % e, now)
            return
        if self.dialog is not None and self.dialog.remote_tag != resp.to_tag:
            # A second fork answered: ACK it and hang it up (we keep one dialog).
            hop = self.ua.outbound_proxy or dialog.next_hop()
            self.ua.layer.send(dialog.ack(cseq), hop)
            bye = dialog.request("BYE")
            self.ua.decorate(bye)
            self.ua.layer.send_request(bye, hop, now)
            return
        self.dialog = dialog
        self.remote_sdp = resp.body or None
        answer = b""
        if not self.local_sdp and self.remote_sdp:
            # We sent no offer: the 2xx carries one and our answer rides in the ACK.
            answer = self._callback_answer(self.remote_sdp) or b""
            self.local_sdp = answer
        ack = self._ack_bytes(cseq, answer)
        self.ack_data[cseq] = ack
        self.ua.layer.send(ack, self._dest())
        if self.cancel_wanted or self.state == ENDING:
            self._end_with_bye("call_ended", None, "local_hangup", now)  # CANCEL lost the race
            return
        self.state = CONFIRMED
        self.auth_count = 0
        self.ua._emit("answered", self, status=resp.status, reason=resp.reason,
                      remote_sdp=self.remote_sdp)

    def _callback_answer(self, offer):
        answerer = self.ua.answer_offer
        if answerer is None:
            return None
        try:
            return answerer(self.call_id, offer)
        except MemoryError:
            raise
        except Exception:  # noqa: BLE001 - the application's callback must not kill us
            return None

    def _ack_bytes(self, cseq, body=b""):
        # The ACK of a 2xx is a transaction of its own: our Via with a new branch. Kept as
        # bytes so that a retransmitted 2xx gets exactly the same ACK again.
        ack = self.dialog.ack(cseq, body)
        self.ua.layer.add_via(ack)
        return ack.serialize()

    def _send_cancel(self, now):
        self.cancel_sent = True
        self._send(build_cancel(self.invite), now, None)

    # -- incoming call (UAS) -----------------------------------------------------------------

    def accept_invite(self, req, tx, now):
        """A new INVITE: 180 Ringing with our tag; the early dialog. False: it was refused."""
        self.state = RINGING
        self.invite = req
        self.invite_tx = tx
        self.source = tx.source
        self.remote_uri = str(req.from_addr.uri)
        self.remote_sdp = req.body or None
        try:
            self.dialog = Dialog.from_uas(req, self.local_tag, self.ua.contact, "early")
        except SipError as e:
            self.ua.respond(tx, 400, str(e))
            return False
        tx.context = self._on_invite_server
        self.ua.respond(tx, 180, None, self.local_tag, contact=True)
        self.ring_until = now + self.ua.ring_timeout_ms
        return True

    def _on_invite_server(self, ev):
        # Timer H or the guard of the INVITE server transaction.
        if self.state == RINGING:
            self._finish("call_ended", 408, "INVITE transaction timed out", ev.now_ms)

    def answer(self, sdp, now):
        if self.state == RINGING:
            self.local_sdp = sdp
            self.ring_until = None
            self.ok = self._send_ok(self.invite, self.invite_tx, sdp, now)
            self.state = ANSWERING
            self.dialog.state = DIALOG_CONFIRMED
            return True
        if self.offer_tx is not None:
            return self._answer_offer(sdp, now)
        return False

    def _send_ok(self, req, tx, sdp, now):
        resp = self.ua.respond(tx, 200, None, self.local_tag, contact=True, body=sdp)
        layer = self.ua.layer
        return _OkResend(resp.serialize(), tx.response_addr, req.cseq[0], now, layer.t1, layer.t2)

    def reject(self, status, now, reason="rejected"):
        if self.state != RINGING:
            return False
        self.ua.respond(self.invite_tx, status, None, self.local_tag)
        self._finish("call_ended", status, reason, now)
        return True

    def on_ack(self, req, now):
        ok = self.ok
        if ok is None or req.cseq[0] != ok.cseq:
            return
        self.ok = None
        body = req.body or None
        if self.state == ANSWERING:
            self.state = CONFIRMED
            if body:
                self.remote_sdp = body  # the answer to an offer we made in the 200
            self.ua._emit("answered", self, status=200, remote_sdp=self.remote_sdp)
        elif self.state == ENDING:
            if self.bye_wanted:
                self.bye_wanted = False
                self._send_in_dialog("BYE", b"", now)
        elif body:
            self.remote_sdp = body
            self.ua._emit("media_updated", self, status=200, remote_sdp=body)

    def on_cancel(self, now):
        """CANCEL of our pending incoming INVITE (the UA already sent its 200)."""
        if self.state == RINGING:
            self.ua.respond(self.invite_tx, 487, None, self.local_tag)
            self._finish("call_ended", 487, "cancelled", now)

    # -- in-dialog requests ------------------------------------------------------------------

    def on_bye(self, tx, now):
        self.ua.respond(tx, 200)
        self.ok = None
        if self.state == RINGING:
            self.ua.respond(self.invite_tx, 487, None, self.local_tag)
        self.bye_wanted = False
        self._finish("call_ended", None, "remote_bye", now)

    def _on_bye(self, ev):
        if ev.kind == "response" and ev.response.status in (401, 407):
            req = ev.transaction.request
            if self._challenged(ev.response, req):
                self._send_in_dialog("BYE", b"", ev.now_ms, True)

    def on_reinvite(self, req, tx, now):
        if self.state == ENDING:
            self.ua.respond(tx, 481)  # our BYE is on its way
            return
        if self.state != CONFIRMED:
            # 14.2: an INVITE while ours is unanswered, or before the ACK -> 491 / 500.
            if self.state == ANSWERING:
                self.ua.respond(tx, 500, None, retry_after=True)
            else:
                self.ua.respond(tx, 491)
            return
        if self.reinvite is not None:
            self.ua.respond(tx, 491)  # glare
            return
        if self.offer_tx is not None:
            self.ua.respond(tx, 500, None, retry_after=True)
            return
        self.dialog.target_refresh(req)
        self.offer_tx = tx
        self.offer_req = req
        offer = req.body or None
        if self.ua.answer_offer is not None:
            self._answer_offer(self._callback_answer(offer), now)
        else:
            self.offer_until = now + 64 * self.ua.layer.t1
            self.ua._emit("media_offer", self, remote_sdp=offer)

    def _answer_offer(self, sdp, now):
        tx, req = self.offer_tx, self.offer_req
        self.offer_tx = self.offer_req = self.offer_until = None
        if tx is None:
            return False
        if not sdp:
            self.ua.respond(tx, 488)
            return True
        self.local_sdp = sdp
        self.ok = self._send_ok(req, tx, sdp, now)
        if req.body:
            self.remote_sdp = req.body
            self.ua._emit("media_updated", self, status=200, remote_sdp=req.body)
        return True

    def update_media(self, sdp, now):
        """Our re-INVITE (hold/unhold): only on a confirmed dialog with nothing pending."""
        if self.state != CONFIRMED or self.reinvite is not None or self.offer_tx is not None:
            return False
        if self.ok is not None:
            return False
        self.reinvite_sdp = sdp
        self.auth_count = 0
        req, tx = self._send_in_dialog("INVITE", sdp, now)
        if tx is None:
            return False
        self.reinvite = (req, tx)
        return True

    def _on_reinvite(self, ev):
        now = ev.now_ms
        req = ev.transaction.request
        if self.reinvite is None or self.reinvite[1] is not ev.transaction:
            if ev.kind == "response" and 200 <= ev.response.status < 300:
                self._on_2xx(ev.response, now)  # retransmitted 2xx: ACK again
            return
        if ev.kind == "timeout":
            self.reinvite = None
            self._end_with_bye("call_ended", 408, "re-INVITE timed out", now)
            return
        resp = ev.response
        status = resp.status
        if status < 200:
            return
        self.reinvite = None
        if status < 300:
            self.dialog.target_refresh(resp)
            ack = self._ack_bytes(req.cseq[0])
            self.ack_data[req.cseq[0]] = ack
            self.ua.layer.send(ack, self._dest())
            if self.state == ENDING:
                return
            self.remote_sdp = resp.body or self.remote_sdp
            self.ua._emit("media_updated", self, status=status, remote_sdp=resp.body or None)
        elif status in (401, 407):
            if not self._challenged(resp, req):
                self.ua._emit("media_update_failed", self, status=status, reason=resp.reason)
                return
            req2, tx = self._send_in_dialog("INVITE", self.reinvite_sdp, now, True)
            if tx is not None:
                self.reinvite = (req2, tx)
        elif status == 491:
            # 14.1: the Call-ID's owner retries after 2.1-4 s, the other side after 0-2 s.
            self.retry_at = now + (_rand(2100, 4000) if self.outgoing else _rand(0, 2000))
        elif status == 481 or status == 408:
            self._end_with_bye("call_ended", status, resp.reason, now)
        else:
            self.ua._emit("media_update_failed", self, status=status, reason=resp.reason)
