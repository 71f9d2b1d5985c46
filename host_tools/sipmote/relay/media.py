"""One call's media: caller RTP -> backend, backend audio -> one 20 ms pacing clock -> RTP.

The SIP side creates one MediaSession per answered call::

    session = MediaSession(rtp_sock, ("192.0.2.7", 40000), "pcmu", backend,
                           SessionConfig.for_agent(agent, cfg.backend, "pcmu", call_id),
                           payload_type=0, dtmf_payload_type=101, call_id=call_id,
                           log_dir=cfg.logging.calls_dir)
    try:
        await session.start()          # connects the backend, then opens RTP and the clock
    except BackendError:
        ...                            # answer 503 (the socket has been closed)
    ...                                # 200 OK; when the session ends by itself
    reason = await session.ended       # (backend closed, no RTP), send BYE; else on BYE:
    await session.stop("bye")          # idempotent: every task, socket and backend released

``rtp`` is a bound UDP socket (the session owns it from then on and closes it) or a
``(host, port)`` to bind. ``session.local_port`` is the port to put in the SDP answer;
``session.set_remote(addr)`` follows a re-INVITE. ``on_ended(reason)`` is an optional callback
fired with the ``ended`` future. ``tool_handler(name, arguments_json) -> output str`` (async)
answers the agent's function calls; without one the agent is told the tool is unavailable.
``session.log`` is the call's CallLog (the SIP side may add its own events to the same file).

A long-running relay should call ``gc.freeze()`` once after start-up: the SDK, pydantic and
typing leave ~80k objects whose full collection stalls the event loop ~40 ms (two frames of
every call); tests/bench/bench_relay.py measures with it.

With ``symmetric_rtp=True`` the first valid audio packet, from wherever it comes, fixes the
caller's address (and the RTP goes back there): for callers behind a NAT whose SDP names a
private address. Otherwise only the remote host's packets are accepted.

Caller direction: each datagram from the remote host is parsed (malformed, wrong payload type,
stray SSRC, duplicate or late sequence numbers: dropped and counted); RFC 4733 telephone events
become one ``send_dtmf`` per key press (and a log line); audio payloads go to one forwarding
task that hands them to ``backend.send_audio`` in sequence order without waiting for anything
else (G.711 as is, or converted to 24 kHz PCM for a PCM backend). In-order audio goes at once;
audio after a gap waits up to ``reorder_ms`` for the missing packet (caller_rtp.py, reorder.py:
one ``call_later`` timer at the window's deadline gives the gap up). The queue between the two
is bounded (``max_pending_frames``; the oldest is dropped when the backend stalls).

Agent direction: audio events go into an AgentPlayout (playout.py); one ``loop.call_at``
timer per call fires at absolute 20 ms deadlines (``deadline += 20 ms``: no drift) and sends
the packet the playout returns for that deadline. A late timer catches up at most
``max_catchup_frames`` frames; beyond that the missed deadlines are skipped (the timestamp
keeps following the clock, the next packet carries a marker). The grid's phase follows the
audio, so that no frame waits for a slot that audio arrival and clock happen to misalign:
- a talkspurt starts as soon as its audio is there (the playout's ``start_time()``), not at
  the next deadline; the deadlines continue 20 ms apart from that first packet;
- a deadline whose frame is late (the playout is ``starving``: the item is still arriving) is
  held up to ``hold_s`` for it; the frame goes out when it arrives, with the timestamp of the
  held deadline, and the deadlines continue from there. So a backend that delivers in real
  time (an agent answering each frame at once) is paced just after its frames arrive, with
  no pre-buffer, and a short hiccup costs the caller a few ms of delay instead of a hole.
Packets are never less than a frame apart, except when the clock catches up after a stall.

Barge-in: on ``speech_started`` the playout drops all queued audio before the next tick, and
for each item cut short the backend gets ``truncate(item_id, ms of that item sent as RTP)``;
the response still being generated (no ``response_done`` seen yet) gets ``cancel_response``,
and any late audio of it is ignored.

Figures (``session.stats``): ``in_latency`` = RTP datagram received -> its WebSocket send done;
``out_latency`` = agent audio received -> its RTP packet sent, minus the time it waited for its
slot on the pacing clock; ``lateness`` = RTP send time - deadline; ``late_frames`` counts sends
more than LATE_S after their deadline.
"""

import asyncio
import collections
import json
import logging
import socket
import time

from .backends import (
    EV_AGENT_AUDIO,
    EV_AGENT_AUDIO_DONE,
    EV_AGENT_TRANSCRIPT,
    EV_AGENT_TRANSCRIPT_DELTA,
    EV_CALLER_TRANSCRIPT,
    EV_CLOSED,
    EV_ERROR,
    EV_RESPONSE_CREATED,
    EV_RESPONSE_DONE,
    EV_SPEECH_STARTED,
    EV_SPEECH_STOPPED,
    EV_TOOL_CALL,
    PCM16_24K,
    BackendError,
    SessionConfig,
)
from .caller_rtp import AUDIO, CallerRtp
from .calllog import CallLog, LatencyStats
from .playout import DEFAULT_PREBUFFER_MS, AgentPlayout
from .reorder import DEFAULT_HOLD_MS as DEFAULT_REORDER_MS

FRAME_S = 0.020
LATE_S = 0.010  # a packet sent this long after its deadline counts as late
STATIC_PT = {"pcmu": 0, "pcma": 8}
_BENIGN_ERRORS = ("response_cancel_not_active",)  # a cancel racing the server's own cancel
_CHECK_EVERY_TICKS = 50  # RTP timeout check: once a second


class MediaSession:
    def __init__(self, rtp, remote, codec, backend, config=None, *, payload_type=None,
                 dtmf_payload_type=101, call_id=None, log_dir=None, on_ended=None,
                 prebuffer_ms=DEFAULT_PREBUFFER_MS, max_queue_ms=60000, send_silence=False,
                 rtp_timeout_s=60.0, max_pending_frames=250, max_catchup_frames=3,
                 tool_handler=None, symmetric_rtp=False, hold_s=FRAME_S,
                 reorder_ms=DEFAULT_REORDER_MS):
        if codec not in STATIC_PT:
            raise ValueError("codec must be 'pcmu' or 'pcma'")
        self.codec = codec
        self.payload_type = STATIC_PT[codec] if payload_type is None else payload_type
        self.backend = backend
        self.config = config or SessionConfig(codec=codec)
        self.config.codec = codec
        self.call_id = call_id or self.config.call_id or "call-%x" % id(self)
        self.log = CallLog(self.call_id, log_dir)
        self.on_ended = on_ended
        self.rtp_timeout_s = rtp_timeout_s
        self.max_pending_frames = max_pending_frames
        self.max_catchup_frames = max_catchup_frames
        self.tool_handler = tool_handler
        if not 0 <= hold_s <= FRAME_S:
            raise ValueError("hold_s must be within 0..%g" % FRAME_S)
        self.hold_s = hold_s
        self.playout = AgentPlayout(codec, self.payload_type, prebuffer_ms=prebuffer_ms,
                                    max_queue_ms=max_queue_ms, send_silence=send_silence)
        self._rtp = rtp
        self._sock = None
        self._port = None
        self._transport = None
        self._releasing = None
        self._loop = None
        self.ended = None
        self._timer = None
        self._start_timer = None  # a talkspurt's start between deadlines (prebuffer by time)
        self._reorder_timer = None  # caller audio held after a gap: when to give the gap up
        self._holding = False  # the deadline at self._deadline waits for its late frame
        self._deadline = 0.0
        self._ticks = 0
        self._forwarder = None
        self._tasks = set()
        self._pending = collections.deque()
        self._wake = asyncio.Event()
        self._running = False
        self._stopped = False
        self._to_backend = None  # converters for a PCM backend (None: G.711 pass-through)
        self._from_backend = None
        self._last_rtp = 0.0
        self._active_response = None
        self._cancelled = collections.OrderedDict()  # response ids whose audio is ignored
        self._speech_stopped_at = None
        self._first_delta_at = None
        self.stats = {
            "forwarded": 0, "pending_dropped": 0, "rtp_out": 0, "late_frames": 0,
            "barge_ins": 0, "in_latency": LatencyStats(), "out_latency": LatencyStats(),
            "lateness": LatencyStats(),
        }
        self.caller = CallerRtp(remote, self.payload_type, dtmf_payload_type, self.stats,
                                self.log, symmetric=symmetric_rtp, reorder_ms=reorder_ms)

    # -- lifecycle -----------------------------------------------------------------------------

    @property
    def remote(self):
        """Where the caller's RTP comes from and ours goes: (host, port)."""
        return self.caller.remote

    @property
    def local_port(self):
        """The local RTP port (for the SDP answer); still readable after the session ended."""
        return self._port

    def set_remote(self, remote):
        """The caller's RTP address changed (re-INVITE)."""
        self.caller.remote = tuple(remote)
        self.log.event("remote", remote="%s:%d" % self.remote[:2])

    async def start(self):
        """Connect the backend, then open RTP and start the clock. Raises BackendError (the
        session is then stopped and its socket closed) when the backend cannot serve the call."""
        self._loop = asyncio.get_running_loop()
        self.ended = self._loop.create_future()
        self._sock = self._open_socket(self._rtp)
        self._port = self._sock.getsockname()[1]
        self.backend.on_event = self._on_backend_event
        t0 = time.monotonic()
        try:
            await self.backend.connect(self.config)
            fmt = self.backend.native_format
            if fmt == PCM16_24K:
                from .resample import G711ToPcm, PcmToG711

                self._to_backend = G711ToPcm(self.codec)
                self._from_backend = PcmToG711(self.codec)
            elif fmt != self.codec:
                raise BackendError("backend format %r does not fit codec %r" % (fmt, self.codec))
            self._transport, _ = await self._loop.create_datagram_endpoint(
                lambda: _RtpProtocol(self), sock=self._sock
            )
        except BaseException as e:
            reason = "backend unavailable: %s" % e if isinstance(e, BackendError) else repr(e)
            self.log.event("setup_failed", say="call setup failed: %s" % e,
                           level=logging.WARNING, reason=str(e))
            await self._release(reason)
            raise
        self._running = True
        self._last_rtp = time.monotonic()
        self._forwarder = asyncio.create_task(self._forward(), name="rtp-to-backend")
        self._deadline = self._loop.time() + FRAME_S
        self._timer = self._loop.call_at(self._deadline, self._tick)
        self.log.event(
            "started", say="call up: %s codec %s, backend %s (%s), local RTP port %d"
            % (self.remote[0], self.codec, self.backend.name, fmt, self.local_port),
            codec=self.codec, backend=self.backend.name, backend_format=fmt,
            remote="%s:%d" % self.remote[:2], local_port=self.local_port,
            connect_ms=round((time.monotonic() - t0) * 1000, 1),
        )

    async def stop(self, reason="hangup"):
        """End the call's media; idempotent. Resolves `ended` with reason if still pending."""
        if self._releasing is not None:  # ending by itself already: wait until it is done
            await asyncio.shield(self._releasing)
            return
        if self._stopped:
            return
        self._running = False
        await self._release(reason)

    def _end(self, reason):
        """The session ends by itself (backend gone, caller silent): stop and tell the SIP side."""
        if self._running:
            self._running = False
            self._releasing = asyncio.get_running_loop().create_task(self._release(reason))

    async def _release(self, reason):
        if self._stopped:
            return
        self._stopped = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._start_timer is not None:
            self._start_timer.cancel()
            self._start_timer = None
        if self._reorder_timer is not None:
            self._reorder_timer.cancel()
            self._reorder_timer = None
        if self._transport is not None:
            self._transport.close()
            self._transport = None
        elif self._sock is not None:
            self._sock.close()
        tasks = [t for t in (self._forwarder, *self._tasks)
                 if t is not None and t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._pending.clear()
        try:
            await self.backend.close()
        except Exception as e:
            self.log.event("backend_close_failed", reason=repr(e))
        self._log_summary(reason)
        self.log.close()
        if self.ended is not None and not self.ended.done():
            self.ended.set_result(reason)
            if self.on_ended is not None:
                self.on_ended(reason)

    def _open_socket(self, rtp):
        if isinstance(rtp, socket.socket):
            rtp.setblocking(False)
            return rtp
        host, port = rtp
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.bind((host, port))
        except OSError:
            sock.close()
            raise
        sock.setblocking(False)
        return sock

    # -- caller -> backend ---------------------------------------------------------------------

    def _on_rtp(self, data, addr):
        t_in = time.monotonic()
        self._from_caller(self.caller.receive(data, addr, t_in * 1000.0))
        if self.caller.deadline_ms is not None and self._reorder_timer is None and self._running:
            self._reorder_timer = self._loop.call_later(
                max(0.0, self.caller.deadline_ms / 1000.0 - t_in), self._reorder_due)

    def _reorder_due(self):
        """The reorder window's deadline: give up the gap, forward what waited for it."""
        self._reorder_timer = None
        t = time.monotonic()
        self._from_caller(self.caller.expire(t * 1000.0))
        if self.caller.deadline_ms is not None and self._running:
            self._reorder_timer = self._loop.call_later(
                max(0.0, self.caller.deadline_ms / 1000.0 - t), self._reorder_due)

    def _from_caller(self, items):
        for kind, value, t_ms in items:  # t_ms: when it arrived (a held packet waited since)
            t_in = t_ms / 1000.0
            if kind == AUDIO:
                self._last_rtp = max(self._last_rtp, t_in)
                self._enqueue(("audio", value, t_in))
            else:
                self.log.event("dtmf", say="caller pressed %s" % value, digit=value)
                self._enqueue(("dtmf", value, t_in))

    def _enqueue(self, entry):
        if not self._running:
            return
        if len(self._pending) >= self.max_pending_frames:
            self._pending.popleft()
            self.stats["pending_dropped"] += 1
        self._pending.append(entry)
        self._wake.set()

    async def _forward(self):
        """The one task that talks to the backend: caller audio, keys and barge-in commands,
        in the order they happened."""
        backend = self.backend
        pending = self._pending
        in_latency = self.stats["in_latency"]
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                while pending:
                    kind, data, t_in = pending.popleft()
                    if kind == "audio":
                        if self._to_backend is not None:
                            data = self._to_backend.convert(data)
                        if data:
                            await backend.send_audio(data)
                        in_latency.add(time.monotonic() - t_in)
                        self.stats["forwarded"] += 1
                    elif kind == "truncate":
                        await backend.truncate(*data)
                    elif kind == "cancel":
                        await backend.cancel_response(data)
                    elif kind == "dtmf":
                        await backend.send_dtmf(data)
                    elif kind == "tool_result":
                        await backend.send_tool_result(*data)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            self.log.event("backend_send_failed", say="backend send failed: %s" % e,
                           level=logging.WARNING, reason=repr(e))
            self._end("backend send failed: %s" % e)

    # -- backend -> caller ---------------------------------------------------------------------

    def _on_backend_event(self, ev):
        if not self._running:
            return
        kind = ev.type
        if kind == EV_AGENT_AUDIO:
            if ev.response_id in self._cancelled or not ev.audio:
                return
            audio = ev.audio
            if self._from_backend is not None:
                audio = self._from_backend.convert(audio)
            now = time.monotonic()
            if self._first_delta_at is None:
                self._first_delta_at = now
            self.playout.push(ev.item_id, audio, ev.t_recv or now, now)
            self._audio_arrived()
        elif kind == EV_AGENT_AUDIO_DONE:
            if self._from_backend is not None and ev.response_id not in self._cancelled:
                self.playout.push(ev.item_id, self._from_backend.flush(), time.monotonic(),
                                  time.monotonic())
            self.playout.end_item(ev.item_id)
            self._audio_arrived()
        elif kind == EV_SPEECH_STARTED:
            self._on_speech_started(ev)
        elif kind == EV_SPEECH_STOPPED:
            self._speech_stopped_at = time.monotonic()
            self._first_delta_at = None
            self.log.event("speech_stopped", item_id=ev.item_id, audio_end_ms=ev.ms)
        elif kind == EV_RESPONSE_CREATED:
            self._active_response = ev.response_id
            self.log.event("response_created", response_id=ev.response_id)
        elif kind == EV_RESPONSE_DONE:
            if self._active_response == ev.response_id:
                self._active_response = None
            self.log.event("response_done", response_id=ev.response_id, status=ev.text)
        elif kind == EV_CALLER_TRANSCRIPT:
            self.log.event("caller_transcript", say="caller: %s" % (ev.text or "").strip(),
                           item_id=ev.item_id, text=ev.text)
        elif kind == EV_AGENT_TRANSCRIPT:
            self.log.event("agent_transcript", say="agent: %s" % (ev.text or "").strip(),
                           item_id=ev.item_id, text=ev.text)
        elif kind == EV_AGENT_TRANSCRIPT_DELTA:
            pass  # the whole sentence is logged when it is done
        elif kind == EV_TOOL_CALL:
            self._spawn(self._run_tool(ev.item_id, ev.text, ev.data))
        elif kind == EV_ERROR:
            benign = ev.code in _BENIGN_ERRORS
            self.log.event("backend_error", say="backend error: %s (%s)" % (ev.text, ev.code),
                           level=logging.DEBUG if benign else logging.WARNING,
                           code=ev.code, message=ev.text)
        elif kind == EV_CLOSED:
            self.log.event("backend_closed", say=ev.text, level=logging.WARNING, reason=ev.text)
            self._end(ev.text or "backend closed")

    def _on_speech_started(self, ev):
        cut = self.playout.interrupt()
        self.log.event("speech_started", say="caller speaking", level=logging.DEBUG,
                       item_id=ev.item_id, audio_start_ms=ev.ms, barge_in=bool(cut))
        if not cut:
            return
        self.stats["barge_ins"] += 1
        if self._from_backend is not None:
            self._from_backend.reset()
        for item_id, sent_ms in cut:
            self._enqueue(("truncate", (item_id, sent_ms), time.monotonic()))
        cancel = self._active_response
        if cancel is not None:
            self._cancelled[cancel] = True
            while len(self._cancelled) > 32:
                self._cancelled.popitem(last=False)
            self._active_response = None
            self._enqueue(("cancel", cancel, time.monotonic()))
        self.log.event("barge_in", say="barge-in: agent stopped after %s" % ", ".join(
            "%d ms of %s" % (ms, item) for item, ms in cut),
            truncated=[{"item_id": i, "audio_end_ms": ms} for i, ms in cut], cancelled=cancel)

    async def _run_tool(self, call_id, name, arguments):
        try:
            if self.tool_handler is None:
                output = json.dumps({"error": "tool %s is not available on this relay" % name})
            else:
                output = await self.tool_handler(name, arguments)
        except Exception as e:
            output = json.dumps({"error": type(e).__name__})
        self.log.event("tool_call", say="tool %s(%s)" % (name, (arguments or "")[:80]),
                       tool=name, call_id=call_id)
        self._enqueue(("tool_result", (call_id, output), time.monotonic()))

    def _spawn(self, coro):
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- the clock -----------------------------------------------------------------------------

    def _tick(self):
        self._timer = None
        if not self._running:
            return
        loop = self._loop
        now = loop.time()
        deadline = self._deadline
        playout = self.playout
        self._holding = False
        n = 0
        while deadline <= now and n < self.max_catchup_frames:
            if playout.starving and now < deadline + self.hold_s:
                # The talkspurt's next frame is late: hold this deadline for it (up to hold_s;
                # _audio_arrived sends it) rather than end the talkspurt with a hole.
                self._holding = True
                playout.held += 1
                break
            packet = playout.tick(deadline)
            if packet is not None:
                self._send(packet, deadline)
            deadline += FRAME_S
            n += 1
            now = loop.time()
        if not self._holding:
            while deadline <= now:  # stalled for longer than the catch-up allows: skip
                playout.skip()
                deadline += FRAME_S
        self._deadline = deadline
        self._timer = loop.call_at(deadline + self.hold_s if self._holding else deadline,
                                   self._tick)
        self._ticks += 1
        if self._ticks % _CHECK_EVERY_TICKS == 0 and self.rtp_timeout_s:
            if now - self._last_rtp > self.rtp_timeout_s:
                self.log.event("rtp_timeout", say="no RTP from the caller for %gs"
                               % self.rtp_timeout_s, level=logging.WARNING)
                self._end("no RTP from the caller for %gs" % self.rtp_timeout_s)

    def _audio_arrived(self):
        """Agent audio was queued: send at once what need not wait for the next deadline (the
        held deadline's frame, or a talkspurt's first packet), and move the grid there."""
        if not self._running or self._loop is None:
            return
        playout = self.playout
        now = self._loop.time()
        if self._holding:
            if playout.starving:
                return  # still not a whole frame: keep holding
            self._holding = False
            if playout.talking and playout.queued_bytes:
                packet = playout.tick(now)  # the held deadline's timestamp, sent late
                if packet is not None:
                    self._send(packet, now)
                    self._rephase(now)
                    return
            self._rephase(self._deadline - FRAME_S)  # talkspurt over: serve the deadline now
            return
        at = playout.start_time()
        if at is None:
            return
        if at <= now:
            packet = playout.start(now, self._deadline)
            if packet is not None:
                self._send(packet, now)
                self._rephase(now)
        elif at < self._deadline and self._start_timer is None:
            self._start_timer = self._loop.call_at(at, self._start_due)

    def _start_due(self):
        self._start_timer = None
        self._audio_arrived()

    def _rephase(self, t):
        """The next deadline is one frame after t (a packet just went out at t)."""
        self._deadline = t + FRAME_S
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._loop.call_at(self._deadline, self._tick)
        if self._start_timer is not None:
            self._start_timer.cancel()
            self._start_timer = None

    def _send(self, packet, deadline):
        try:
            self._transport.sendto(packet, self.remote)
        except OSError:
            pass
        t = time.monotonic()
        stats = self.stats
        stats["rtp_out"] += 1
        late = t - deadline
        stats["lateness"].add(max(late, 0.0))
        if late > LATE_S:
            stats["late_frames"] += 1
        playout = self.playout
        if playout.talking:
            wait = max(0.0, deadline - playout.frame_t_ready)
            stats["out_latency"].add(max(0.0, t - playout.frame_t_recv - wait))
            if packet[1] & 0x80 and self._speech_stopped_at is not None:
                self._log_turn(t)

    def _log_turn(self, t):
        first = self._first_delta_at
        self.log.event(
            "turn",
            speech_stopped_to_first_audio_ms=round((first - self._speech_stopped_at) * 1000, 1)
            if first else None,
            speech_stopped_to_first_rtp_ms=round((t - self._speech_stopped_at) * 1000, 1),
        )
        self._speech_stopped_at = None

    def _log_summary(self, reason):
        s = self.stats
        p = self.playout
        self.log.event(
            "ended", say="call ended: %s" % reason, reason=reason,
            rtp_in=s["rtp_in"], forwarded=s["forwarded"], malformed=s["malformed"],
            foreign=s["foreign"], wrong_pt=s["wrong_pt"], wrong_ssrc=s["wrong_ssrc"],
            out_of_order=s["out_of_order"], reordered=s["reordered"], seq_gaps=s["seq_gaps"],
            reorder_held=s["held"], reorder_hold_max_ms=round(s["hold_max_ms"], 1),
            pending_dropped=s["pending_dropped"],
            dtmf=s["dtmf"], rtp_out=s["rtp_out"], late_frames=s["late_frames"],
            barge_ins=s["barge_ins"], talkspurts=p.talkspurts, underruns=p.underruns,
            early_starts=p.early_starts, held=p.held,
            agent_audio_dropped_bytes=p.dropped_bytes, skipped_ticks=p.skipped,
            in_latency=s["in_latency"].summary_ms(), out_latency=s["out_latency"].summary_ms(),
            lateness=s["lateness"].summary_ms(),
        )


class _RtpProtocol(asyncio.DatagramProtocol):
    def __init__(self, session):
        self.session = session

    def datagram_received(self, data, addr):
        self.session._on_rtp(data, addr)

    def error_received(self, exc):  # ICMP port unreachable and friends: the call goes on
        pass
