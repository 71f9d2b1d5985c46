# SIPVicious against the relay on loopback, as its operator runs it (`sipmote relay` with a
# TOML config): svmap finds a SIP server that names no software version; svwar finds no
# extension with any method (existing and unknown users get identical answers); svcrack
# finds no password (repeated digest failures from one source lock it out, while other
# sources are unaffected); replayed credentials are refused. Figures per tool are printed.
import asyncio
import re
import socket

import pytest
from security_peers import DEVICE_PASSWORD, LoopbackRelay, SipCaller, sipvicious

from voip.sip import digest
from voip.sip.message import parse

NAMES = ["kitchen", "desk", "assistant", "parrot", "admin", "relay", "1000", "100", "test"]


def run(coro):
    return asyncio.run(coro)


def found_rows(output):
    """The rows of SIPVicious' result table (empty when it found nothing)."""
    rows = []
    for line in output.splitlines():
        if line.startswith("| ") and not line.startswith(("| Extension", "| SIP Device")):
            rows.append([c.strip() for c in line.strip("|").split("|")])
    return rows


def test_svmap_finds_a_sip_server_that_names_no_version(tmp_path):
    async def main():
        async with LoopbackRelay(tmp_path) as relay:
            return relay, await sipvicious("svmap", [], relay, tmp_path, source="127.0.0.1")

    relay, (rc, out) = run(main())
    rows = found_rows(out)
    print("\nsvmap -> relay: %s" % rows)
    assert rows == [[relay.address, "unknown"]], out  # found (it is a server), no fingerprint


@pytest.mark.parametrize("method", ["REGISTER", "INVITE", "OPTIONS"])
def test_svwar_enumerates_no_extension(tmp_path, method):
    words = tmp_path / "names.txt"
    words.write_text("\n".join(NAMES) + "\n")

    async def main():
        async with LoopbackRelay(tmp_path) as relay:
            result = await sipvicious(
                "svwar", ["--force", "-m", method, "-d", str(words), "-e100-140",
                          "-t", "0.02"], relay, tmp_path, source="127.0.0.1")
            return relay, result

    relay, (rc, out) = run(main())
    rows = found_rows(out)
    print("\nsvwar -m %s -> relay: %d names tried, found %s" % (method, len(NAMES) + 41, rows))
    assert rows == [], out
    assert "found nothing" in out, out
    assert "Traceback" not in relay.output()


class RawClient:
    """Hand-made requests from one socket, each answered by the relay (or None)."""

    def __init__(self, relay, host="127.0.0.1"):
        self.relay = relay
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, 0))
        self.sock.settimeout(3)
        self.n = 0

    def request(self, method, user, auth=None, to_user=None):
        self.n += 1
        port = self.sock.getsockname()[1]
        host = self.sock.getsockname()[0]
        uri = "sip:%s@%s" % (user, self.relay.address)
        lines = [
            "%s %s SIP/2.0" % (method, uri),
            "Via: SIP/2.0/UDP %s:%d;branch=z9hG4bKraw%d;rport" % (host, port, self.n),
            "Max-Forwards: 70",
            "From: <sip:%s@127.0.0.1>;tag=f%d" % (to_user or user, self.n),
            "To: <sip:%s@127.0.0.1>" % (to_user or user),
            "Call-ID: raw%d-%d@127.0.0.1" % (port, self.n),
            "CSeq: %d %s" % (self.n, method),
            "Contact: <sip:%s@%s:%d>" % (user, host, port),
        ]
        if auth:
            lines.append("Authorization: " + auth)
        body = ""
        if method == "INVITE":
            body = ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
                    "m=audio 9 RTP/AVP 0\r\n")
            lines.append("Content-Type: application/sdp")
        lines.append("Content-Length: %d" % len(body))
        self.sock.sendto(("\r\n".join(lines) + "\r\n\r\n" + body).encode(),
                         ("127.0.0.1", self.relay.port))
        while True:
            try:
                resp = parse(self.sock.recv(65535))
            except TimeoutError:
                return None
            if resp.status >= 200:  # skip 100 Trying
                return resp

    def close(self):
        self.sock.close()


def shape(resp):
    """What a scanner can compare between two answers: status, reason, header names and
    every value but the per-request ones (tags, branches, Call-ID, CSeq, nonce)."""
    out = [resp.status, resp.reason]
    for name, value in resp.headers:
        if name in ("Via", "From", "To", "Call-ID", "CSeq"):
            out.append(name)
        elif name == "WWW-Authenticate":
            out.append(re.sub(r'nonce="[^"]*"', 'nonce="*"', value))
        else:
            out.append((name, value))
    return out


def credentials(client, method, user, password, challenge_for="kitchen"):
    resp = client.request(method, challenge_for)
    assert resp is not None and resp.status == 401, resp
    challenge = digest.parse_challenge(resp.get("WWW-Authenticate"))
    uri = "sip:%s@%s" % (user if method == "REGISTER" else "assistant", client.relay.address)
    return digest.authorization(challenge, method, uri, user, password)


def test_existing_and_unknown_users_get_identical_answers(tmp_path):
    async def main():
        async with LoopbackRelay(tmp_path) as relay:
            c = RawClient(relay)
            try:
                out = {}
                # no credentials: the same 401 for a device that exists and one that does not
                out["register"] = [shape(c.request("REGISTER", u)) for u in ("kitchen", "nobody")]
                out["invite"] = [shape(c.request("INVITE", a)) for a in ("assistant", "ghost")]
                # wrong password for an existing user vs any password for an unknown one
                out["wrong"] = [
                    shape(c.request("REGISTER", u, credentials(c, "REGISTER", u, "guess")))
                    for u in ("kitchen", "nobody")]
                return out
            finally:
                c.close()

    out = run(main())
    for kind, (known, unknown) in out.items():
        assert known == unknown, (kind, known, unknown)
    assert out["register"][0][0] == 401 and out["wrong"][0][0] == 403


def test_svcrack_is_locked_out_and_other_sources_are_not(tmp_path):
    words = ["guess%d" % i for i in range(12)] + [DEVICE_PASSWORD] + ["late1", "late2"]
    (tmp_path / "passwords.txt").write_text("\n".join(words) + "\n")

    async def main():
        async with LoopbackRelay(tmp_path) as relay:
            # without the lockout it cracks this list in a fraction of a second; with it, it
            # never gets another challenge and retries until stopped
            rc, out = await sipvicious(
                "svcrack", ["-u", "kitchen", "-d", str(tmp_path / "passwords.txt")], relay,
                tmp_path, stop_after=10, source="127.0.0.1")
            admission = (await relay.status())["admission"]
            # the right password, now, from the locked-out address and from another one
            locked = SipCaller(relay, password=DEVICE_PASSWORD, host="127.0.0.1")
            other = SipCaller(relay, password=DEVICE_PASSWORD, host="127.0.0.2")
            try:
                from_locked = await locked.call("assistant", hold_s=0.2)
                from_other = await other.call("assistant", hold_s=0.2)
            finally:
                locked.close()
                other.close()
            return relay, out, from_locked, from_other, admission

    relay, out, from_locked, from_other, admission = run(main())
    rows = found_rows(out)
    log = relay.output()
    print("\nsvcrack -> relay: %d passwords (the right one 13th), found %s in 10 s; admission "
          "%s; %d refusals logged" % (len(words), rows, admission, log.count("403 to REGISTER")))
    assert rows == [] and DEVICE_PASSWORD not in out, out
    assert "locking out 127.0.0.1 for 300 s after 5 digest failures" in log, log[-3000:]
    # hundreds of refusals a second, but the log holds a burst of them, not a flood
    refused = log.count("403 to REGISTER from 127.0.0.1")
    assert 5 <= refused <= 20, refused
    assert from_locked.status == 403, from_locked.kinds
    assert from_other.status == 200, (from_other.kinds, log[-2000:])
    assert admission["locked_out"] > 100  # it kept trying: every try met the lockout


def test_replayed_credentials_are_refused(tmp_path):
    async def main():
        async with LoopbackRelay(tmp_path) as relay:
            c = RawClient(relay)
            try:
                auth = credentials(c, "REGISTER", "kitchen", DEVICE_PASSWORD)
                first = c.request("REGISTER", "kitchen", auth)
                replay = c.request("REGISTER", "kitchen", auth)  # new branch and CSeq
                again = c.request("REGISTER", "kitchen", auth)
                return first.status, replay.status, again.status
            finally:
                c.close()

    first, replay, again = run(main())
    print("\nreplayed Authorization: first %d, replay %d, again %d" % (first, replay, again))
    assert first == 200
    assert replay in (401, 403) and again in (401, 403)
