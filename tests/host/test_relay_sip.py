# The relay's SIP behaviour, driven over loopback UDP by a scripted client: admission,
# failures (404, 488, 503, lockout, malformed), CANCEL, BYE, backend gone mid-call, registrar.
import asyncio
import os
import socket
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "interop"))
from relay_fixtures import RelayUnderTest, relay_config  # noqa: E402

from voip.sip.digest import authorization, parse_challenge  # noqa: E402
from voip.sip.message import new_branch, new_call_id, new_tag, parse  # noqa: E402

OFFER = (
    "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio {port} RTP/AVP {pts} 101\r\n{maps}a=rtpmap:101 telephone-event/8000\r\n"
)
MAPS = {
    0: "a=rtpmap:0 PCMU/8000\r\n",
    8: "a=rtpmap:8 PCMA/8000\r\n",
    9: "a=rtpmap:9 G722/8000\r\n",
}


def offer(port, pts=(0,)):
    return OFFER.format(
        port=port, pts=" ".join(str(p) for p in pts), maps="".join(MAPS[p] for p in pts)
    )


class Client:
    """A scripted UAC on 127.0.0.1 with its own SIP and RTP sockets."""

    def __init__(self, relay_port, user="kitchen", password="kitchen-pw"):
        self.relay = ("127.0.0.1", relay_port)
        self.user = user
        self.password = password
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]
        self.rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.rtp.bind(("127.0.0.1", 0))
        self.rtp_port = self.rtp.getsockname()[1]
        self.cseq = 0
        self.call_id = new_call_id("127.0.0.1")
        self.tag = new_tag()

    def close(self):
        self.sock.close()
        self.rtp.close()

    def request(self, method, target="assistant", body="", headers=(), to_tag=None, cseq=None):
        if cseq is None:
            self.cseq += 1
            cseq = self.cseq
        uri = "sip:%s@127.0.0.1:%d" % (target, self.relay[1])
        lines = [
            "%s %s SIP/2.0" % (method, uri),
            "Via: SIP/2.0/UDP 127.0.0.1:%d;rport;branch=%s" % (self.port, new_branch()),
            "Max-Forwards: 70",
            "From: <sip:%s@127.0.0.1>;tag=%s" % (self.user, self.tag),
            "To: <%s>%s" % (uri, ";tag=" + to_tag if to_tag else ""),
            "Call-ID: %s" % self.call_id,
            "CSeq: %d %s" % (cseq, method),
            "Contact: <sip:%s@127.0.0.1:%d>" % (self.user, self.port),
        ]
        lines += list(headers)
        if body:
            lines.append("Content-Type: application/sdp")
        lines.append("Content-Length: %d" % len(body))
        return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()

    def send(self, data):
        self.sock.sendto(data, self.relay)

    async def recv(self, timeout=5, skip_provisional=True):
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            left = deadline - loop.time()
            if left <= 0:
                raise AssertionError("no message within %s s" % timeout)
            data = await asyncio.wait_for(loop.sock_recv(self.sock, 65535), left)
            msg = parse(data)
            if skip_provisional and not msg.is_request and msg.status < 200:
                continue
            return msg

    async def expect_nothing(self, seconds=0.3):
        loop = asyncio.get_running_loop()
        try:
            data = await asyncio.wait_for(loop.sock_recv(self.sock, 65535), seconds)
        except asyncio.TimeoutError:
            return
        raise AssertionError("unexpected message: %r" % data[:80])

    def credentials(self, challenge_resp, method="INVITE", target="assistant", password=None):
        challenge = parse_challenge(challenge_resp.get("WWW-Authenticate"))
        uri = "sip:%s@127.0.0.1:%d" % (target, self.relay[1])
        value = authorization(challenge, method, uri, self.user, password or self.password)
        return "Authorization: " + value

    async def invite(self, target="assistant", pts=(0,), password=None):
        """INVITE, answer the 401 with credentials; returns the final response."""
        body = offer(self.rtp_port, pts)
        self.send(self.request("INVITE", target, body))
        first = await self.recv()
        if first.status != 401:
            return first
        self.ack(first)
        auth = self.credentials(first, target=target, password=password)
        self.send(self.request("INVITE", target, body, headers=[auth]))
        return await self.recv()

    def ack(self, resp, target="assistant"):
        self.send(self.request("ACK", target, to_tag=resp.to_tag, cseq=resp.cseq[0]))


def run(coro_fn, tmp_path, **cfg_sections):
    backend_options = cfg_sections.pop("backend_options", {})

    async def main():
        async with RelayUnderTest(relay_config(tmp_path, **cfg_sections), **backend_options) as rt:
            client = Client(rt.port)
            try:
                return await coro_fn(rt, client)
            finally:
                client.close()

    return asyncio.run(main())


def test_options_answered_without_admission(tmp_path):
    async def body(rt, c):
        c.send(c.request("OPTIONS"))
        resp = await c.recv()
        assert resp.status == 200 and "INVITE" in resp.get("Allow")

    run(body, tmp_path)


def test_call_answered_then_bye_releases_everything(tmp_path):
    async def body(rt, c):
        resp = await c.invite()
        assert resp.status == 200 and resp.get("Content-Type") == "application/sdp"
        assert b"RTP/AVP 0 101" in resp.body
        assert "INVITE" in resp.get("Allow") and resp.get("Contact")
        c.ack(resp)
        await asyncio.sleep(0.1)
        assert rt.relay.ports.in_use == 1
        (call,) = rt.relay.calls.values()
        assert call.state == "confirmed" and call.user == "kitchen"
        c.send(c.request("BYE", to_tag=resp.to_tag))
        bye_ok = await c.recv()
        assert bye_ok.status == 200 and bye_ok.cseq[1] == "BYE"
        await rt.wait_idle()
        (backend,) = rt.backends
        assert backend.closed

    run(body, tmp_path)


def test_unknown_agent_gets_404_after_admission(tmp_path):
    async def body(rt, c):
        resp = await c.invite(target="nobody")
        assert resp.status == 404
        assert rt.backends == [] and rt.relay.ports.in_use == 0

    run(body, tmp_path)


def test_no_common_codec_gets_488(tmp_path):
    async def body(rt, c):
        resp = await c.invite(pts=(9,))
        assert resp.status == 488
        c.ack(resp)
        await rt.wait_idle()
        assert rt.backends == []

    run(body, tmp_path)


def test_backend_unreachable_gets_503(tmp_path):
    async def body(rt, c):
        resp = await c.invite()
        assert resp.status == 503
        c.ack(resp)
        await rt.wait_idle()
        (backend,) = rt.backends
        assert not backend.connected

    run(body, tmp_path, backend_options={"fail": True})


def test_backend_closing_mid_call_sends_bye_with_reason(tmp_path):
    async def body(rt, c):
        resp = await c.invite()
        assert resp.status == 200
        c.ack(resp)
        remote = resp.body.decode().split("m=audio ")[1].split()[0]
        for seq in range(5):  # RTP so the backend counts frames and then hangs up
            header = bytes([0x80, 0, 0, seq, 0, 0, 0, seq * 160 & 0xFF, 1, 2, 3, 4])
            c.rtp.sendto(header + bytes(160), ("127.0.0.1", int(remote)))
            await asyncio.sleep(0.02)
        bye = await c.recv()
        assert bye.is_request and bye.method == "BYE"
        assert "recording backend hung up" in bye.get("Reason")
        c.send(
            b"SIP/2.0 200 OK\r\n"
            + "".join(
                "%s: %s\r\n" % (n, v) for n, v in bye.headers if n != "Content-Length"
            ).encode()
            + b"Content-Length: 0\r\n\r\n"
        )
        await rt.wait_idle()

    run(body, tmp_path, backend_options={"close_after_frames": 3})


def test_cancel_before_answer_gets_487(tmp_path):
    import sipmote.relay.backends as backends_mod

    class SlowBackend(backends_mod.Backend):
        name = "slow"

        async def connect(self, cfg):
            await asyncio.sleep(30)

    async def body(rt, c):
        rt.relay.backend_factory = lambda call, kind: SlowBackend()
        c.send(c.request("INVITE", body=offer(c.rtp_port)))
        challenge = await c.recv()
        c.ack(challenge)
        invite = c.request("INVITE", body=offer(c.rtp_port), headers=[c.credentials(challenge)])
        c.send(invite)
        trying = await c.recv(skip_provisional=False)
        assert trying.status == 100
        cancel = invite.decode().replace("INVITE sip", "CANCEL sip", 1)
        cancel = cancel.replace("CSeq: %d INVITE" % c.cseq, "CSeq: %d CANCEL" % c.cseq)
        head = cancel.split("\r\n\r\n")[0].split("\r\n")
        head = [h for h in head if not h.startswith(("Content-", "Contact"))]
        c.send(("\r\n".join(head) + "\r\nContent-Length: 0\r\n\r\n").encode())
        got = sorted([(await c.recv()).status, (await c.recv()).status])
        assert got == [200, 487]
        await rt.wait_idle()

    run(body, tmp_path)


def test_repeated_digest_failures_lock_the_source_out(tmp_path):
    async def body(rt, c):
        for _ in range(3):
            resp = await c.invite(password="guess")
            assert resp.status == 403
            c.ack(resp)
            c.call_id = new_call_id("127.0.0.1")
        # locked: even the right password now gets 403, without a challenge first
        c.send(c.request("INVITE", body=offer(c.rtp_port)))
        resp = await c.recv()
        assert resp.status == 403
        assert rt.relay.guard.stats["locked_out"] == 1

    run(body, tmp_path, admission={"max_failures": 3, "lockout_s": 60})


def test_malformed_datagrams_are_dropped_and_service_continues(tmp_path):
    async def body(rt, c):
        for junk in (
            b"\x00\xff" * 50,
            b"INVITE\r\n\r\n",
            b"SIP/2.0 200\r\nVia: x\r\n\r\n",
            b"\r\n\r\n",
        ):
            c.send(junk)
        c.send(b"OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1\r\n\r\n")  # no From/To
        c.send(c.request("OPTIONS") + b"x" * 20000)  # larger than any SIP message we take
        await c.expect_nothing()
        c.send(c.request("OPTIONS"))
        assert (await c.recv()).status == 200
        assert rt.relay.endpoint.stats["malformed"] >= 2
        assert rt.relay.endpoint.stats["oversize"] == 1

    run(body, tmp_path)


def test_request_in_unknown_dialog_gets_481(tmp_path):
    async def body(rt, c):
        c.send(c.request("BYE", to_tag="nosuchtag"))
        assert (await c.recv()).status == 481

    run(body, tmp_path)


def test_register_needs_own_credentials_and_binds(tmp_path):
    async def body(rt, c):
        reg = c.request("REGISTER", target="kitchen", headers=["Expires: 120"])
        c.send(reg)
        challenge = await c.recv()
        assert challenge.status == 401
        auth = c.credentials(challenge, method="REGISTER", target="kitchen")
        c.send(c.request("REGISTER", target="kitchen", headers=["Expires: 120", auth]))
        ok = await c.recv()
        assert ok.status == 200
        assert ok.get("Contact") == "<sip:kitchen@127.0.0.1:%d>;expires=120" % c.port
        (binding,) = rt.relay.bindings.lookup("kitchen", rt.relay.endpoint.now_ms())
        assert binding.source == ("127.0.0.1", c.port)
        # too short: 423 with Min-Expires
        c.send(c.request("REGISTER", target="kitchen", headers=["Expires: 5"]))
        ch = await c.recv()
        auth = c.credentials(ch, method="REGISTER", target="kitchen")
        c.send(c.request("REGISTER", target="kitchen", headers=["Expires: 5", auth]))
        too_brief = await c.recv()
        assert too_brief.status == 423 and too_brief.get("Min-Expires") == "60"
        # unregister everything
        c.send(c.request("REGISTER", target="kitchen", headers=["Expires: 0"]))
        ch = await c.recv()
        auth = c.credentials(ch, method="REGISTER", target="kitchen")
        star = c.request("REGISTER", target="kitchen", headers=["Expires: 0", auth])
        star = star.replace(b"Contact: <sip:kitchen@127.0.0.1:%d>" % c.port, b"Contact: *")
        c.send(star)
        assert (await c.recv()).status == 200
        assert rt.relay.bindings.lookup("kitchen", rt.relay.endpoint.now_ms()) == []

    run(body, tmp_path)


def test_register_for_another_user_is_refused(tmp_path):
    async def body(rt, c):
        c.send(c.request("REGISTER", target="desk"))
        ch = await c.recv()
        auth = c.credentials(ch, method="REGISTER", target="desk")
        c.send(c.request("REGISTER", target="desk", headers=[auth]))
        assert (await c.recv()).status == 403

    run(
        body,
        tmp_path,
        devices=[
            {"user": "kitchen", "password": "kitchen-pw"},
            {"user": "desk", "password": "desk-pw"},
        ],
    )


def test_no_ack_for_200_ends_the_call_with_bye(tmp_path):
    async def body(rt, c):
        rt.relay.endpoint.layer.t1 = 20  # 64*T1 = 1.3 s instead of 32 s
        resp = await c.invite()
        assert resp.status == 200
        retransmissions = 0
        while True:  # the 200 comes again (T1, 2T1, ...) until the relay gives up with BYE
            msg = await c.recv(timeout=5)
            if msg.is_request:
                break
            assert msg.status == 200
            retransmissions += 1
        assert msg.method == "BYE" and retransmissions >= 3
        assert "no ACK" in msg.get("Reason")

    run(body, tmp_path)


def test_shutdown_hangs_up_active_calls(tmp_path):
    async def main():
        rt = RelayUnderTest(relay_config(tmp_path))
        await rt.__aenter__()
        c = Client(rt.port)
        try:
            resp = await c.invite()
            c.ack(resp)
            await asyncio.sleep(0.05)
            stop = asyncio.ensure_future(rt.relay.stop())
            bye = await c.recv()
            assert bye.method == "BYE" and "shutting down" in bye.get("Reason")
            await stop
            assert rt.relay.calls == {} and rt.relay.ports.in_use == 0
        finally:
            c.close()

    asyncio.run(main())


@pytest.mark.parametrize("device_exists", [True, False])
def test_call_device_needs_a_registration(tmp_path, device_exists):
    async def body(rt, c):
        with pytest.raises(LookupError, match="not registered" if device_exists else "no device"):
            await rt.relay.call_device("kitchen" if device_exists else "attic")

    run(body, tmp_path)


def test_reinvite_moves_the_media_and_keeps_the_call(tmp_path):
    async def body(rt, c):
        resp = await c.invite()
        c.ack(resp)
        await asyncio.sleep(0.05)
        (call,) = rt.relay.calls.values()
        new_rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        new_rtp.bind(("127.0.0.1", 0))
        try:
            new_port = new_rtp.getsockname()[1]
            c.send(c.request("INVITE", body=offer(new_port), to_tag=resp.to_tag))
            ok = await c.recv()
            assert ok.status == 200 and b"m=audio %d " % call.rtp_port in ok.body
            c.ack(ok)
            assert call.media.remote == ("127.0.0.1", new_port)
            assert call.state == "confirmed"
        finally:
            new_rtp.close()
        c.send(c.request("BYE", to_tag=resp.to_tag))
        assert (await c.recv()).status == 200
        await rt.wait_idle()

    run(body, tmp_path)


def test_ack_of_401_on_a_fresh_branch_stops_its_retransmission(tmp_path):
    """SIPp ACKs a 401 on a new branch (RFC 3261 wants the INVITE's): the relay must still
    take it as the ACK, or it resends the 401 for 32 s and SIPp's dialog state goes astray."""

    async def body(rt, c):
        c.send(c.request("INVITE", body=offer(c.rtp_port)))
        challenge = await c.recv()
        assert challenge.status == 401
        c.ack(challenge)  # Client.request always puts a new branch in the Via
        await c.expect_nothing(1.2)  # T1 = 500 ms: a 401 would have come again by now

    run(body, tmp_path)


def test_every_response_to_one_attempt_has_one_to_tag(tmp_path):
    async def body(rt, c):
        resp = await c.invite()
        assert resp.status == 200
        first_401_tag = rt.relay.local_tag_for(parse(c.request("INVITE")))
        assert resp.to_tag == first_401_tag
        c.ack(resp)

    run(body, tmp_path)


def test_unanswered_call_to_a_device_is_cancelled(tmp_path):
    """The relay rings a registered device that never answers: after the timeout it CANCELs
    the INVITE as RFC 3261 9.1 says (same Request-URI, top Via with the INVITE's branch,
    From, To, Call-ID, CSeq number), and the 487 ends the call."""
    from voip.sip.message import response_for

    async def body(rt, c):
        c.send(c.request("REGISTER", target="kitchen", headers=["Expires: 120"]))
        auth = c.credentials(await c.recv(), method="REGISTER", target="kitchen")
        c.send(c.request("REGISTER", target="kitchen", headers=["Expires: 120", auth]))
        assert (await c.recv()).status == 200
        calling = asyncio.ensure_future(rt.relay.call_device("kitchen", "parrot", timeout=1))
        invite = await c.recv()
        assert invite.method == "INVITE"
        c.sock.sendto(response_for(invite, 180, to_tag="dev1").serialize(), rt.relay.sip_address)
        cancel = await c.recv(timeout=3)
        assert cancel.method == "CANCEL" and cancel.uri == invite.uri
        assert cancel.get_all("Via") == invite.get_all("Via")[:1]
        for name in ("From", "To", "Call-ID"):
            assert cancel.get(name) == invite.get(name), name
        assert cancel.cseq == (invite.cseq[0], "CANCEL")
        c.sock.sendto(response_for(cancel, 200).serialize(), rt.relay.sip_address)
        c.sock.sendto(response_for(invite, 487, to_tag="dev1").serialize(), rt.relay.sip_address)
        with pytest.raises(LookupError, match="did not answer"):
            await calling
        ack = await c.recv()
        assert ack.method == "ACK" and ack.cseq == (invite.cseq[0], "ACK")
        await rt.wait_idle()

    run(body, tmp_path)
