# The device's voip.sip.ua.UserAgent against real peers on 127.0.0.1: Kamailio (digest
# registrar and record-routing proxy) and SIPp. A tiny asyncio UDP shell here plays the part
# phone.sip_task plays on the device: it owns the socket and the clock, the UA owns the SIP.
import asyncio

import pytest
from peers_harness import Kamailio, free_udp_port, g711_test_audio, require, run_sipp

from voip.sip.ua import UserAgent

pytestmark = pytest.mark.interop

SDP = (
    b"v=0\r\no=device 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio %d RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n"
)


class UaShell(asyncio.DatagramProtocol):
    """Socket + clock around a UserAgent: feed datagrams, send outgoing, tick at deadlines."""

    def __init__(self, config, auto_answer=False):
        self.config = config
        self.auto_answer = auto_answer
        self.events = []
        self.sent = []  # every datagram sent, for the assertions
        self.received = []
        self.ua = None
        self.transport = None
        self._wake = asyncio.Event()

    def now(self):
        return int(asyncio.get_running_loop().time() * 1000)

    async def start(self):
        loop = asyncio.get_running_loop()
        self.transport, _ = await loop.create_datagram_endpoint(
            lambda: self, local_addr=self.config["local"]
        )
        self.ua = UserAgent(self.config, answer_offer=lambda call_id, offer: self._sdp())
        self._task = asyncio.ensure_future(self._timer())
        return self

    def _sdp(self):
        return SDP % (self.config["local"][1] + 2)

    def datagram_received(self, data, addr):
        self.received.append(data)
        self.ua.receive(data, addr[:2], self.now())
        self.flush()

    def flush(self):
        for data, addr in self.ua.outgoing():
            assert addr[0] == "127.0.0.1", addr  # loopback only, always
            self.sent.append(data)
            self.transport.sendto(data, addr)
        for ev in self.ua.events():
            self.events.append(ev)
            if ev.kind == "incoming_call" and self.auto_answer:
                self.ua.answer(ev.call_id, self._sdp(), self.now())
                self.flush()
        self._wake.set()

    async def _timer(self):
        while True:
            deadline = self.ua.next_deadline()
            delay = 0.5 if deadline is None else max(0, deadline - self.now()) / 1000
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), min(delay, 0.5))
            except asyncio.TimeoutError:
                pass
            self.ua.tick(self.now())
            self.flush()

    async def wait_event(self, kind, timeout=10):
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            for ev in self.events:
                if ev.kind == kind:
                    self.events.remove(ev)
                    return ev
            await asyncio.sleep(0.02)
        raise AssertionError("no %s event; got %r" % (kind, self.events))

    async def stop(self):
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass
        self.transport.close()


def ua_config(kam_port, password="alicepw", **kw):
    config = {
        "user": "alice",
        "password": password,
        # With the port, Kamailio sees From: ...@127.0.0.1:<port> as "myself" and challenges
        # our INVITEs too; the digest realm is the host, 127.0.0.1.
        "domain": "127.0.0.1:%d" % kam_port,
        "registrar": ("127.0.0.1", kam_port),
        "local": ("127.0.0.1", free_udp_port()),
        "expires": 120,
        "user_agent": "sipmote-test",
    }
    config.update(kw)
    return config


def test_register_with_digest_then_take_a_call_kamailio_routes_from_sipp(tmp_path):
    require("kamailio")
    require("sipp")
    audio = tmp_path / "caller.pcmu"
    audio.write_bytes(g711_test_audio(25, seed=5))

    async def main():
        kam = await Kamailio(str(tmp_path)).start()
        shell = None
        try:
            shell = await UaShell(ua_config(kam.port), auto_answer=True).start()
            shell.ua.register(shell.now())
            shell.flush()
            registered = await shell.wait_event("registered")
            status, trace = await run_sipp(
                "127.0.0.1:%d" % kam.port,
                "uac_proxy_auth_stream.xml",
                str(tmp_path),
                keys={"stream": "%s,1,0,PCMU/8000" % audio, "pt": 0, "codec": "PCMU/8000",
                      "caller": "relay"},
                extra=["-s", "alice", "-au", "relay", "-ap", "relaypw", "-d", "1000"],
            )
            assert status == 0, trace[-4000:] + "\n--- kamailio:\n" + kam.log()
            incoming = await shell.wait_event("incoming_call")
            answered = await shell.wait_event("answered")
            ended = await shell.wait_event("call_ended")
            shell.ua.unregister(shell.now())
            shell.flush()
            unregistered = await shell.wait_event("unregistered")
            return registered, incoming, answered, ended, unregistered, trace, kam.log()
        finally:
            if shell is not None:
                await shell.stop()
            await kam.stop()

    registered, incoming, answered, ended, unregistered, trace, kam_log = asyncio.run(main())
    assert registered.expires == 120 and unregistered.status == 200
    assert "REGISTER sip:alice@127.0.0.1" in kam_log and "saved" in kam_log
    assert "routed to sip:alice@127.0.0.1" in kam_log
    assert incoming.remote_uri.startswith("sip:relay@127.0.0.1")
    assert b"m=audio" in incoming.remote_sdp and answered.call_id == incoming.call_id
    assert ended.reason == "remote_bye"
    assert "Server: sipmote-test" in trace  # SIPp saw our 200 through the proxy


def test_wrong_password_is_a_registration_failure_with_backoff(tmp_path):
    require("kamailio")

    async def main():
        kam = await Kamailio(str(tmp_path)).start()
        shell = None
        try:
            shell = await UaShell(ua_config(kam.port, password="wrong")).start()
            shell.ua.register(shell.now())
            shell.flush()
            failed = await shell.wait_event("registration_failed")
            return failed, shell.ua.registered, len([e for e in shell.events])
        finally:
            if shell is not None:
                await shell.stop()
            await kam.stop()

    failed, registered, _ = asyncio.run(main())
    assert failed.status == 401 and failed.reason == "credentials rejected"
    assert not registered and 2500 <= failed.retry_in <= 5000


def test_call_through_kamailio_to_sipp_with_407_and_record_route(tmp_path):
    require("kamailio")
    require("sipp")

    async def main():
        kam = await Kamailio(str(tmp_path)).start()
        shell = None
        try:
            cfg = ua_config(kam.port, outbound_proxy=("127.0.0.1", kam.port))
            shell = await UaShell(cfg).start()
            sipp_port = free_udp_port()
            sipp = asyncio.ensure_future(run_sipp(
                "127.0.0.1:%d" % kam.port, "uas_answer.xml", str(tmp_path),
                local_port=sipp_port, keys={"pt": 0, "codec": "PCMU/8000"},
                media_port=free_udp_port(even=True), extra=["-rtp_echo"]))
            await asyncio.sleep(0.5)  # SIPp binds its port
            call_id = shell.ua.call("sip:bob@127.0.0.1:%d" % sipp_port, shell._sdp(), shell.now())
            shell.flush()
            answered = await shell.wait_event("answered", timeout=15)
            await asyncio.sleep(0.3)
            shell.ua.hangup(call_id, shell.now())
            shell.flush()
            status, trace = await sipp
            assert status == 0, trace[-4000:] + "\n--- kamailio:\n" + kam.log()
            return answered, trace, shell
        finally:
            if shell is not None:
                await shell.stop()
            await kam.stop()

    answered, trace, shell = asyncio.run(main())
    assert b"m=audio" in answered.remote_sdp
    # Kamailio challenged our INVITE; we answered with credentials (which it consumed, so
    # SIPp saw one INVITE, CSeq 2) and it record-routed: our ACK and BYE went through it.
    invites = [d for d in shell.sent if d.startswith(b"INVITE ")]
    assert len(invites) == 2 and b"Proxy-Authorization: Digest" in invites[1]
    assert b"Route: <sip:127.0.0.1:" in invites[0]  # the outbound proxy, loose-routed
    assert any(d.startswith(b"SIP/2.0 407") for d in shell.received)
    assert trace.count("INVITE sip:bob@") == 1 and "CSeq: 2 INVITE" in trace
    assert "Record-Route: <sip:127.0.0.1" in trace
    for method in (b"ACK ", b"BYE "):
        # In the dialog: Request-URI = SIPp's Contact (the remote target), Route = Kamailio.
        ours = [d for d in shell.sent if d.startswith(method + b"sip:127.0.0.1:")]
        assert ours and all(b"\r\nRoute: <sip:127.0.0.1:" in d and b";lr" in d for d in ours)
    # What SIPp got had come through Kamailio: its Via on top of ours.
    ack = trace[trace.index("ACK sip:"):]
    ack = ack[: ack.index("\n\n")]
    assert ack.count("Via: SIP/2.0/UDP 127.0.0.1") == 2, ack
    assert "BYE sip:" in trace
