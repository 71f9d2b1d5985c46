# Secrets (SIP passwords, HA1 hashes, the PBX password, the AI API key) never appear in what
# the relay or the device print: every line of a full relay run at debug level (calls, a wrong
# password, scanners, a PBX that refuses it, the AI service's handshake), its per-call logs,
# `sipmote relay status` and `call`, config errors; the device's log and status. The device
# has no place for an AI key at all.
import asyncio
import os
import sys

import pytest
from security_peers import DEVICE_PASSWORD, LoopbackRelay, SipCaller, free_port, sipvicious

from sipmote.relay.guard import ha1_md5
from voip.sip.message import parse

API_KEY = "sk-test-SECRET-KEY-0f1e2d3c4b5a69788796a5b4"
DESK_PASSWORD = "desk-SECRET-pw-77"
DESK_HA1 = ha1_md5("desk", "sipmote", DESK_PASSWORD)
PBX_PASSWORD = "pbx-SECRET-pw-4242"
SECRETS = [DEVICE_PASSWORD, DESK_PASSWORD, DESK_HA1, PBX_PASSWORD, API_KEY, API_KEY[10:]]


def host_path(name):
    here = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), name)
    if here not in sys.path:
        sys.path.insert(0, here)


def assert_clean(where, text):
    for secret in SECRETS:
        assert secret not in text, "%s shows a secret (%s...)" % (where, secret[:6])


class RefusingPbx(asyncio.DatagramProtocol):
    """A registrar that challenges every REGISTER and refuses every answer (403)."""

    def __init__(self):
        self.registers = 0

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        try:
            req = parse(data)
        except ValueError:
            return
        if not req.is_request or req.method != "REGISTER":
            return
        self.registers += 1
        status = "403 Forbidden" if req.get("Authorization") else "401 Unauthorized"
        head = ["SIP/2.0 " + status]
        for name in ("Via", "From", "To", "Call-ID", "CSeq"):
            for v in req.get_all(name) if name == "Via" else [req.get(name)]:
                head.append("%s: %s" % (name, v + (";tag=pbx" if name == "To" else "")))
        if status.startswith("401"):
            head.append('WWW-Authenticate: Digest realm="pbx", nonce="n%d", qop="auth"'
                        % self.registers)
        self.transport.sendto(("\r\n".join(head) + "\r\nContent-Length: 0\r\n\r\n").encode(),
                              addr)


async def run_cli(*args, cwd=None):
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sipmote.cli", "relay", *args, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT, cwd=cwd,
        env={k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"})
    out, _ = await asyncio.wait_for(proc.communicate(), 30)
    return proc.returncode, out.decode("utf-8", "replace")


def test_a_full_relay_run_never_prints_a_secret(tmp_path):
    host_path("host")
    from fake_realtime import FakeRealtimeServer

    async def main():
        loop = asyncio.get_running_loop()
        pbx = RefusingPbx()
        pbx_port = free_port()
        transport, _ = await loop.create_datagram_endpoint(lambda: pbx,
                                                           local_addr=("127.0.0.1", pbx_port))
        texts = {}
        try:
            async with FakeRealtimeServer() as fake:
                relay = LoopbackRelay(
                    tmp_path, env={"OPENAI_API_KEY": API_KEY},
                    backend={"kind": "openai", "openai_url": fake.url},
                    devices=[{"user": "kitchen", "password": DEVICE_PASSWORD},
                             {"user": "desk", "ha1": DESK_HA1}],
                    pbx={"registrar": "127.0.0.1:%d" % pbx_port, "user": "relay",
                         "password": PBX_PASSWORD, "expires": 60})
                async with relay:
                    good = SipCaller(relay, password=DEVICE_PASSWORD)
                    bad = SipCaller(relay, user="desk", password="not-" + DESK_PASSWORD)
                    try:
                        answered = await good.call("assistant", hold_s=1.0)
                        refused = await bad.call("assistant", hold_s=0.2)
                    finally:
                        good.close()
                        bad.close()
                    (tmp_path / "names").write_text("kitchen\ndesk\nrelay\n")
                    await sipvicious("svwar", ["-d", str(tmp_path / "names"), "-e1-20",
                                               "--force"], relay, tmp_path,
                                     source="127.0.0.1")
                    (tmp_path / "words").write_text("a\nb\n%s\nc\nd\ne\nf\n" % DEVICE_PASSWORD)
                    await sipvicious("svcrack", ["-u", "kitchen", "-d", str(tmp_path / "words")],
                                     relay, tmp_path, stop_after=4, source="127.0.0.1")
                    texts["status"] = await relay.status_text()
                    texts["call"] = (await run_cli("--config", relay.config_path, "call",
                                                   "kitchen", "--timeout", "2"))[1]
                texts["log"] = relay.output()
                texts["calls"] = relay.call_logs()
                texts["config"] = (tmp_path / "relay.toml").read_text()
        finally:
            transport.close()
        return texts, answered, refused, pbx.registers

    texts, answered, refused, pbx_registers = asyncio.run(main())
    # the run did what it should, so the logs have something to hide
    assert answered.status == 200 and refused.status == 403
    assert pbx_registers >= 2 and "PBX" in texts["log"]
    # the WebSocket handshake was logged at debug level, its Authorization header masked
    assert "> Authorization: [redacted]" in texts["log"]
    config = texts.pop("config")  # the one place they are (the operator's file)
    assert all(s in config for s in (DEVICE_PASSWORD, DESK_HA1, PBX_PASSWORD))
    for where, text in texts.items():
        print("%s: %d lines" % (where, text.count("\n")))
        assert_clean(where, text)


@pytest.mark.parametrize("section", [
    '[backend]\nkind = "openai"\napi_key = "%s"\nmodle = "typo"\n' % API_KEY,
    '[backend]\napi_key = ["%s"]\n' % API_KEY,
    '[[devices]]\nuser = "kitchen"\npassword = "%s"\nha1 = "%s"\n' % (DEVICE_PASSWORD, DESK_HA1),
    '[[devices]]\nuser = "kitchen"\npassword = ["%s"]\n' % DEVICE_PASSWORD,
    '[pbx]\nregistrar = "pbx.invalid:99999"\nuser = "r"\npassword = "%s"\n' % PBX_PASSWORD,
    '[sip]\nport = "%s"\n[[devices]]\nuser = "k"\npassword = "%s"\n' % (API_KEY, DEVICE_PASSWORD),
])
def test_config_errors_name_the_key_not_the_secret(tmp_path, section):
    path = tmp_path / "bad.toml"
    path.write_text(section)
    status, out = asyncio.run(run_cli("--config", str(path)))
    print(out.strip())
    assert status != 0 and "Traceback" not in out
    assert_clean("config error", out)


def test_the_device_never_prints_its_password_and_has_nowhere_to_put_an_ai_key(tmp_path):
    from phone import config as phone_config

    for where in ({"openai": {"api_key": API_KEY}}, {"sip": {"api_key": API_KEY}},
                  {"call": {"openai_api_key": API_KEY}}):
        cfg = {"sip": {"user": "kitchen"}}
        for name, table in where.items():
            cfg[name] = dict(cfg.get(name, {}), **table)
        with pytest.raises(phone_config.ConfigError) as err:
            phone_config.validate(cfg)
        assert API_KEY not in str(err.value)
    with pytest.raises(phone_config.ConfigError) as err:
        phone_config.validate({"sip": {"user": "kitchen", "password": 12345678}})
    assert "12345678" not in str(err.value)

    from simdevice import require_micropython

    require_micropython()
    from sipmote.loopback import LoopbackSystem

    async def main():
        async with LoopbackSystem(str(tmp_path), "echo", tone=440) as system:
            password = system._password
            await system.place_call()
            status = await system.control("status")
            await system.hangup("device")
            await system.wait_idle()
            return password, status, system

    password, status, system = asyncio.run(main())
    device_log = system.device.log() if system.device else ""
    assert password and "connected" in device_log
    for where, text in (("device log", device_log), ("device status", status),
                        ("device exit report", str(system.device_result))):
        assert password not in text, where
