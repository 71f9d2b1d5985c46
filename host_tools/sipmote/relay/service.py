"""The relay service: SIP endpoint + admission + registrar + calls + PBX registration.

    relay = Relay(cfg)                   # a validated config.RelayConfig
    await relay.start()                  # binds SIP, the control socket, registers with the PBX
    await relay.call_device("kitchen")   # ring a registered device with the first agent
    relay.status()                       # calls and registrations (what `relay status` shows)
    await relay.stop()                   # BYE to every call, unregister, release everything

``Relay`` is the transaction user of its ``SipEndpoint``: requests arrive in ``on_request``.
Out of a dialog: OPTIONS (200, no admission: it reveals nothing), REGISTER (digest of the
device itself, then the registrar), INVITE (guard, then a Call), CANCEL; anything else gets
405. In a dialog: ACK, BYE, re-INVITE, OPTIONS, INFO; an unknown dialog gets 481.

Options for tests and embedding: ``media_factory(call)`` replaces the media half (default:
``media.MediaSession`` with the agent's backend), ``backend_factory(call, kind)`` only the
backend, ``control=False`` skips the control socket.
"""

import asyncio
import contextlib
import hashlib
import logging
import os
import socket

from voip.sdp import NoCommonCodec, parsed
from voip.sdp_session import LocalSession
from voip.sip.dialog import Dialog, request_dialog_id
from voip.sip.message import (
    Request,
    SipError,
    new_branch,
    new_call_id,
    new_tag,
    response_for,
    validate_request,
)

from . import calls as calls_mod
from .admission import Allowlist, FailureLimiter
from .bindings import BindingTable
from .calls import Call
from .control import ControlServer
from .guard import Admit, Challenge, Guard
from .ports import PortsExhausted, RtpPortAllocator, bind_rtp_socket
from .registrar import handle_register

log = logging.getLogger("sipmote.relay")
ALLOW = "INVITE, ACK, BYE, CANCEL, OPTIONS, REGISTER, INFO"
_WILDCARD = ("0.0.0.0", "::", "")


class Relay:
    def __init__(self, cfg, media_factory=None, backend_factory=None, control=True):
        from .sip_endpoint import RateLimitedLog, SipEndpoint

        self.cfg = cfg
        self.calls = {}  # Call-ID -> Call
        self.bindings = BindingTable()
        self.ports = RtpPortAllocator(cfg.sip.rtp_port_min, cfg.sip.rtp_port_max)
        adm = cfg.admission
        self.guard = Guard(
            cfg.sip.realm,
            cfg.devices,
            Allowlist(adm.allowlist),
            FailureLimiter(
                adm.max_failures, adm.failure_window_s * 1000, adm.lockout_s * 1000, adm.table_size
            ),
            our_hosts=(cfg.sip.bind, cfg.sip.public_address),
            algorithms=cfg.sip.digest_algorithms,
        )
        self.endpoint = SipEndpoint(self)
        # a scanner or a locked-out guesser gets a 403 per request, hundreds a second: log the
        # first few per minute and count the rest, so an attacker cannot flood the log
        self._reject_log = RateLimitedLog(log, burst=20, period_s=60)
        self.calls_dir = cfg.logging.calls_dir
        self.media_factory = media_factory or self._default_media
        self.backend_factory = backend_factory
        self.control = ControlServer(self, cfg.control_socket()) if control else None
        self.pbx = None
        self.stats = {"calls": 0, "rejected": 0}
        self._tag_secret = os.urandom(16)

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self):
        host, port = await self.endpoint.open(self.cfg.sip.bind, self.cfg.sip.port)
        self.guard.add_our_host(host)
        self.guard.local_port = port
        log.info(
            "relay listening on %s:%d (agents: %s; backend %s)",
            host,
            port,
            ", ".join(a.name for a in self.cfg.agents),
            self.cfg.backend.kind,
        )
        try:
            if self.control is not None:
                await self.control.start()
            if self.cfg.pbx is not None:
                from .pbx import PbxRegistration

                self.pbx = PbxRegistration(self, self.cfg.pbx)
                self.pbx.start()
        except BaseException:
            await self.stop()
            raise
        return host, port

    @property
    def sip_address(self):
        return self.endpoint.local_address

    async def stop(self, timeout=5):
        calls = list(self.calls.values())
        for call in calls:
            call.cancel()
            call.end("relay shutting down", send_bye=True)
        if calls:
            await asyncio.wait([asyncio.ensure_future(c.ended) for c in calls], timeout=timeout)
        if self.pbx is not None:
            await self.pbx.stop(timeout)
        if self.control is not None:
            await self.control.stop()
        # let the BYEs and the un-REGISTER leave before the socket closes
        await asyncio.sleep(0)
        self.endpoint.close()

    def status(self):
        now = self.endpoint.now_ms()
        regs = {}
        for user in self.bindings.users(now):
            regs[user] = [
                {"contact": b.contact, "source": "%s:%d" % b.source, "expires": b.expires_in(now)}
                for b in self.bindings.lookup(user, now)
            ]
        out = {
            "sip": "%s:%d" % tuple(self.endpoint.local_address or ("-", 0)),
            "calls": [c.summary() for c in self.calls.values()],
            "registrations": regs,
            "rtp_ports_in_use": self.ports.in_use,
            "admission": dict(self.guard.stats),
        }
        if self.pbx is not None:
            out["pbx"] = self.pbx.status()
        return out

    # -- addresses --------------------------------------------------------------------------

    def local_host_for(self, peer_host):
        """The address a peer reaches us at: public_address, the bound address, or (bound to
        a wildcard) the source address the kernel picks towards that peer."""
        if self.cfg.sip.public_address:
            return self.cfg.sip.public_address
        bound = self.endpoint.local_address[0] if self.endpoint.local_address else ""
        if bound not in _WILDCARD:
            return bound
        family = socket.AF_INET6 if ":" in peer_host else socket.AF_INET
        with contextlib.closing(socket.socket(family, socket.SOCK_DGRAM)) as s:
            try:
                s.connect((peer_host, 9))  # no packet is sent: this only picks a route
                return s.getsockname()[0]
            except OSError:
                return "127.0.0.1"

    def _hostport(self, peer_host):
        host = self.local_host_for(peer_host)
        if ":" in host:
            host = "[%s]" % host
        return "%s:%d" % (host, self.endpoint.local_address[1])

    def contact_uri(self, call_or_user, peer_host=None):
        if isinstance(call_or_user, Call):
            return "sip:%s@%s" % (call_or_user.agent.name, self._hostport(call_or_user.peer[0]))
        return "sip:%s@%s" % (call_or_user, self._hostport(peer_host or "127.0.0.1"))

    def add_via(self, request, dest):
        request.remove("Via")
        request.insert(
            "Via", "SIP/2.0/UDP %s;rport;branch=%s" % (self._hostport(dest[0]), new_branch())
        )

    def send_in_dialog(self, request, dest):
        """Send a request built by a Dialog (which carries no Via) to `dest`."""
        self.add_via(request, dest)
        if request.method == "ACK":
            self.endpoint.send(request, dest)
            return None
        return self.endpoint.send_request(request, dest, _log_result(request))

    # -- transaction user ---------------------------------------------------------------------

    def on_request(self, ev):
        req, tx, source = ev.request, ev.transaction, ev.source
        if tx is None:  # the ACK of a 2xx (non-2xx ACKs, even on a new branch, stay in the layer)
            call = self._call_in_dialog(req)
            if call is not None:
                call.on_ack(req)
            return
        problem = validate_request(req, accept=("application/sdp",))
        if problem is not None and req.method != "INFO":
            self._reply(tx, req, problem[0], problem[1])
            return
        if req.method == "CANCEL":
            self._on_cancel(ev)
            return
        try:
            in_dialog = req.to_tag is not None
        except SipError:
            self._reply(tx, req, 400, "Bad To")
            return
        if in_dialog:
            self._in_dialog(req, tx)
            return
        method = req.method
        if method == "OPTIONS":
            self._reply_options(tx, req)
        elif method == "REGISTER":
            self._on_register(req, tx, source)
        elif method == "INVITE":
            self._on_invite(req, tx, source)
        elif method in ("BYE", "INFO"):
            self._reply(tx, req, 481)
        else:
            resp = response_for(req, 405, to_tag=new_tag())
            resp.add("Allow", ALLOW)
            self.endpoint.respond(tx, resp)

    def on_stray_response(self, ev):
        call = self.calls.get(ev.response.call_id)
        if call is not None and call.direction == "out":
            call.resend_ack(ev.response)

    def on_server_timeout(self, ev):
        call = ev.transaction.context
        if isinstance(call, Call) and call.state == calls_mod.SETUP:
            call.end("setup took too long", send_bye=False)

    def forget(self, call):
        if self.calls.get(call.call_id) is call:
            del self.calls[call.call_id]

    # -- helpers ------------------------------------------------------------------------------

    def local_tag_for(self, req):
        """Our To tag for every response to one call attempt (Call-ID + From tag): the 401,
        the 403, the 200 all carry the same one. Some clients (SIPp) keep the first tag they
        see for the whole call, and one tag per attempt also makes retransmissions agree."""
        try:
            key = "%s\n%s" % (req.call_id, req.from_tag)
        except SipError:
            return new_tag()
        return hashlib.sha256(self._tag_secret + key.encode()).hexdigest()[:16]

    def _reply(self, tx, req, status, reason=None, headers=(), to_tag=None):
        resp = response_for(req, status, reason, to_tag=to_tag or self.local_tag_for(req))
        for name, value in headers:
            resp.add(name, value)
        self.endpoint.respond(tx, resp)
        return resp

    def _reply_options(self, tx, req):
        self._reply(
            tx,
            req,
            200,
            headers=(("Allow", ALLOW), ("Accept", "application/sdp"), ("Supported", "")),
        )

    def _call_in_dialog(self, req):
        call = self.calls.get(req.call_id)
        if call is None or call.dialog is None:
            return None
        try:
            if request_dialog_id(req) != call.dialog.id:
                return None
        except SipError:
            return None
        return call

    def _admit(self, req, tx, source):
        """The guard's verdict applied: returns the Admit, or None after answering."""
        verdict = self.guard.check(req, source, self.endpoint.now_ms())
        if isinstance(verdict, Admit):
            return verdict
        if isinstance(verdict, Challenge):
            headers = [("WWW-Authenticate", h) for h in verdict.headers]
            self._reply(tx, req, 401, headers=headers)
            return None
        self.stats["rejected"] += 1
        self._reject_log.warning(
            "403 to %s from %s:%d (From %s): %s",
            req.method,
            source[0],
            source[1],
            _from_uri(req),
            verdict.reason,
        )
        self._reply(tx, req, 403)
        return None

    # -- REGISTER -----------------------------------------------------------------------------

    def _on_register(self, req, tx, source):
        verdict = self._admit(req, tx, source)
        if verdict is None:
            return
        resp = handle_register(
            self.bindings,
            req,
            verdict.user,
            source,
            self.endpoint.now_ms(),
            self.local_tag_for(req),
        )
        self.endpoint.respond(tx, resp)

    # -- INVITE in ----------------------------------------------------------------------------

    def _agent_for(self, req):
        try:
            user = req.request_uri.user
        except SipError:
            return None
        agent = self.cfg.agent(user) if user else None
        if agent is None and self.cfg.pbx is not None and user == self.cfg.pbx.user:
            agent = self.cfg.agent(self.cfg.pbx.agent) if self.cfg.pbx.agent else None
            agent = agent or self.cfg.agents[0]
        return agent

    def _on_invite(self, req, tx, source):
        if req.call_id in self.calls:
            self._reply(tx, req, 482, "Loop Detected")  # same Call-ID, new branch: a fork loop
            return
        verdict = self._admit(req, tx, source)
        if verdict is None:
            return
        agent = self._agent_for(req)
        if agent is None:
            self._reply(tx, req, 404)
            return
        if not req.get_all("Contact"):
            self._reply(tx, req, 400, "Missing Contact")
            return
        if not req.body:
            self._reply(tx, req, 488, "SDP Offer Required")  # no delayed offer
            return
        call = Call(self, req.call_id, "in", agent, source, user=verdict.user)
        call.invite = req
        call.invite_tx = tx
        call.local_tag = self.local_tag_for(req)
        tx.context = call
        self.calls[call.call_id] = call
        self.stats["calls"] += 1
        call.log.event(
            "invite",
            say="INVITE for %s from %s:%d (%s%s)"
            % (
                agent.name,
                source[0],
                source[1],
                verdict.how,
                " " + verdict.user if verdict.user else "",
            ),
            agent=agent.name,
            source="%s:%d" % tuple(source),
            admitted=verdict.how,
            user=verdict.user,
        )
        self._reply(tx, req, 100)
        call.setup_task = asyncio.ensure_future(self._setup_inbound(call, req, tx))

    async def _setup_inbound(self, call, req, tx):
        def fail(status, reason, log_reason, headers=()):
            self._reply(tx, req, status, reason, headers=headers, to_tag=call.local_tag)
            call.end(log_reason, send_bye=False)

        try:
            call.rtp_socket, call.rtp_port = bind_rtp_socket(self.ports, self._rtp_bind_host())
        except PortsExhausted as e:
            fail(503, "No Media Port", str(e), (("Retry-After", "30"),))
            return
        host = self.local_host_for(call.peer[0])
        call.sdp = LocalSession(
            host, call.rtp_port, codecs=_offer_order(req.body), username="sipmote"
        )
        try:
            answer, call.media_info = call.sdp.answer(req.body)
        except NoCommonCodec as e:
            fail(488, None, "no common codec: %s" % e)
            return
        except (ValueError, SipError) as e:
            fail(400, "Bad SDP", "bad SDP offer: %s" % e)
            return
        try:
            call.dialog = Dialog.from_uas(req, call.local_tag, self.contact_uri(call))
        except SipError as e:
            fail(400, "Bad Dialog", str(e))
            return
        call.destination = call.dialog.next_hop()
        try:
            await call.start_media()
        except asyncio.CancelledError:
            raise  # CANCEL or shutdown: end() already answered and released
        except Exception as e:  # noqa: BLE001 - BackendError, OSError, timeouts
            call.rtp_socket = None  # the media session closed it
            fail(503, "Agent Unavailable", "backend unavailable: %s" % e)
            return
        if call.state != calls_mod.SETUP:
            return
        ok = response_for(req, 200, to_tag=call.local_tag)
        for route in req.get_all("Record-Route"):  # RFC 3261 12.1.1: the proxies stay in
            ok.add("Record-Route", route)
        ok.add("Contact", "<%s>" % self.contact_uri(call))
        ok.add("Allow", ALLOW)
        ok.add("Content-Type", "application/sdp")
        ok.body = answer
        call.state = calls_mod.ANSWERED
        call.log.event("answered", codec=call.codec, rtp_port=call.rtp_port)
        call.send_ok(tx, ok)

    def _rtp_bind_host(self):
        bound = self.endpoint.local_address[0]
        return bound if bound not in _WILDCARD else self.cfg.sip.bind

    # -- CANCEL -------------------------------------------------------------------------------

    def _on_cancel(self, ev):
        req, tx = ev.request, ev.transaction
        target = ev.cancel_target
        if target is None:
            self._reply(tx, req, 481)
            return
        self._reply(tx, req, 200, to_tag=None)
        call = target.context
        if isinstance(call, Call) and call.state == calls_mod.SETUP:
            resp = response_for(target.request, 487, to_tag=call.local_tag)
            self.endpoint.respond(target, resp)
            call.end("cancelled by the caller", send_bye=False)

    # -- in-dialog ----------------------------------------------------------------------------

    def _in_dialog(self, req, tx):
        call = self._call_in_dialog(req)
        if call is None:
            self._reply(tx, req, 481)
            return
        if call.dialog.check_request(req):
            self._reply(tx, req, 500, "CSeq Out Of Order")
            return
        method = req.method
        if method == "BYE":
            self._reply(tx, req, 200)
            who = "caller" if call.direction == "in" else "device"
            call.end("%s hung up" % who, send_bye=False)
        elif method == "INVITE":
            self._reinvite(call, req, tx)
        elif method in ("OPTIONS", "INFO"):
            self._reply(tx, req, 200)
        else:
            resp = response_for(req, 405)
            resp.add("Allow", ALLOW)
            self.endpoint.respond(tx, resp)

    def _reinvite(self, call, req, tx):
        """A session refresh, hold or address change: answer from the same LocalSession."""
        call.dialog.target_refresh(req)
        if req.body:
            try:
                body, media = call.sdp.answer(req.body)
            except NoCommonCodec:
                self._reply(tx, req, 488)
                return
            except (ValueError, SipError):
                self._reply(tx, req, 400, "Bad SDP")
                return
            if call.media is not None and (media.address, media.port) != (
                call.media_info.address,
                call.media_info.port,
            ):
                set_remote = getattr(call.media, "set_remote", None)
                if set_remote is not None:
                    set_remote((media.address, media.port))
            call.media_info = media
        else:
            body = call.sdp.offer()
        ok = response_for(req, 200)
        ok.add("Contact", "<%s>" % self.contact_uri(call))
        ok.add("Content-Type", "application/sdp")
        ok.body = body
        self.endpoint.respond(tx, ok)

    # -- INVITE out: ring a registered device --------------------------------------------------

    async def call_device(self, device, agent_name=None, timeout=60):
        if self.cfg.device(device) is None:
            raise LookupError("no device named %r in the config" % device)
        bindings = self.bindings.lookup(device, self.endpoint.now_ms())
        if not bindings:
            raise LookupError("device %s is not registered" % device)
        agent = self.cfg.agent(agent_name) if agent_name else self.cfg.agents[0]
        if agent is None:
            raise LookupError("no agent named %r" % agent_name)
        binding = bindings[0]
        peer = tuple(binding.source)
        call = Call(self, new_call_id(self.local_host_for(peer[0])), "out", agent, peer, device)
        call.local_tag = new_tag()
        try:
            call.rtp_socket, call.rtp_port = bind_rtp_socket(self.ports, self._rtp_bind_host())
        except PortsExhausted as e:
            call.end(str(e), send_bye=False)
            raise OSError(str(e)) from None
        host = self.local_host_for(peer[0])
        call.sdp = LocalSession(host, call.rtp_port, username="sipmote")
        me = self._hostport(peer[0])
        inv = Request("INVITE", binding.contact)
        inv.add("Max-Forwards", "70")
        inv.add("From", '"%s" <sip:%s@%s>;tag=%s' % (agent.name, agent.name, me, call.local_tag))
        inv.add("To", "<sip:%s@%s>" % (device, me))
        inv.add("Call-ID", call.call_id)
        inv.add("CSeq", "1 INVITE")
        inv.add("Contact", "<%s>" % self.contact_uri(call))
        inv.add("Allow", ALLOW)
        inv.add("Content-Type", "application/sdp")
        inv.body = call.sdp.offer()
        self.add_via(inv, peer)
        call.invite = inv
        call.answered = asyncio.get_running_loop().create_future()
        self.calls[call.call_id] = call
        self.stats["calls"] += 1
        call.log.event(
            "calling", say="calling %s (%s) for %s" % (device, binding.contact, agent.name)
        )
        call.invite_tx = self.endpoint.send_request(inv, peer, call.on_invite_result)
        try:
            await asyncio.wait_for(asyncio.shield(call.answered), timeout)
        except asyncio.TimeoutError:
            call.cancel()
            call.end("no answer within %d s" % timeout, send_bye=False)
            raise LookupError("%s did not answer within %d s" % (device, timeout)) from None
        return call.summary()

    def hangup(self, call_id, reason="hung up by the relay"):
        call = self.calls.get(call_id)
        if call is None:
            raise LookupError("no call %s" % call_id)
        call.cancel()
        call.end(reason, send_bye=True)
        return call.ended

    # -- the media half ------------------------------------------------------------------------

    def _default_media(self, call):
        from .backends import SessionConfig, create_backend
        from .media import MediaSession

        cfg = self.cfg
        kind = cfg.backend_kind(call.agent)
        if self.backend_factory is not None:
            backend = self.backend_factory(call, kind)
        elif kind == "openai":
            backend = create_backend(
                "openai",
                api_key=cfg.backend.api_key or "sk-unused-by-a-local-endpoint",
                url=cfg.backend.openai_url,
                model=cfg.backend.model,
            )
        else:
            backend = create_backend(kind)
        info = call.media_info
        codec = info.codec.lower()
        session = MediaSession(
            call.rtp_socket,
            (info.address, info.port),
            codec,
            backend,
            SessionConfig.for_agent(call.agent, cfg.backend, codec, call.call_id),
            payload_type=info.payload_type,
            dtmf_payload_type=info.recv_telephone_event,
            call_id=call.call_id,
            log_dir=self.calls_dir,
            prebuffer_ms=cfg.media.prebuffer_ms,
            reorder_ms=cfg.media.reorder_ms,
        )
        call.log = session.log  # SIP events land in the same per-call JSON-lines file
        return session


def _offer_order(body):
    """PCMU/PCMA in the order the caller offered them (its preference wins)."""
    try:
        offer = parsed(body)
    except (ValueError, SipError):
        return ("PCMU", "PCMA")
    for section in offer.media:
        if section.media != "audio" or section.port == 0:
            continue
        names = []
        for pt in section.payload_types():
            entry = section.codec(pt)
            if entry and entry[0].upper() in ("PCMU", "PCMA") and entry[0].upper() not in names:
                names.append(entry[0].upper())
        if names:
            return tuple(names) + tuple(n for n in ("PCMU", "PCMA") if n not in names)
    return ("PCMU", "PCMA")


def _from_uri(req):
    try:
        return str(req.from_addr.uri)
    except SipError:
        return "?"


def _log_result(request):
    method = request.method

    def on_result(ev):
        if ev.kind == "timeout":
            log.info("%s to %s: no answer", method, request.uri)
        elif ev.response.status >= 300:
            log.info(
                "%s to %s: %d %s", method, request.uri, ev.response.status, ev.response.reason
            )

    return on_result

