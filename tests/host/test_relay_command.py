# `sipmote relay` argument handling and the control socket `relay call DEVICE` uses.
import asyncio
import json
import os
import tempfile

import pytest

from sipmote.cli import build_parser
from sipmote.relay import command, control

EXAMPLE = os.path.join(
    os.path.dirname(__file__), "..", "..", "host_tools", "sipmote", "relay", "example.toml"
)


def parse(argv):
    return build_parser().parse_args(["relay"] + argv)


def test_serve_flags_override_config():
    args = parse(
        [
            "--config",
            EXAMPLE,
            "--port",
            "5099",
            "--backend",
            "openai",
            "--openai-url",
            "ws://127.0.0.1:8765/v1/realtime",
            "--rtp-ports",
            "30000-30099",
        ]
    )
    assert args.relay_action is None
    cfg = command.load_config(args)
    assert cfg.sip.port == 5099 and cfg.sip.bind == "127.0.0.1"
    assert cfg.backend.kind == "openai" and cfg.backend_kind(cfg.agent("parrot")) == "openai"
    assert cfg.backend.openai_url == "ws://127.0.0.1:8765/v1/realtime"
    assert (cfg.sip.rtp_port_min, cfg.sip.rtp_port_max) == (30000, 30099)


def test_call_accepts_config_before_or_after():
    for argv in (
        ["--config", EXAMPLE, "call", "kitchen"],
        ["call", "kitchen", "--config", EXAMPLE],
    ):
        args = parse(argv)
        assert args.relay_action == "call" and args.device == "kitchen" and args.config == EXAMPLE
    args = parse(["call", "desk", "--agent", "parrot", "--control", "/tmp/x.sock"])
    assert args.agent == "parrot" and command.load_config(args).control_socket() == "/tmp/x.sock"


def test_bad_flags_and_config_fail_cleanly(capsys, tmp_path):
    with pytest.raises(SystemExit):
        parse(["--rtp-ports", "30000"])
    bad = tmp_path / "bad.toml"
    bad.write_text("[sip]\nport = -1\n")
    assert command.run(parse(["--config", str(bad)])) == 2
    assert "sip.port" in capsys.readouterr().err


def test_call_without_running_relay(capsys, tmp_path):
    args = parse(["call", "kitchen", "--control", str(tmp_path / "none.sock")])
    assert command.run(args) == 1
    assert "no relay is running" in capsys.readouterr().err


class FakeRelay:
    def __init__(self):
        self.calls = []

    def status(self):
        return {"calls": [], "registrations": {"kitchen": ["sip:kitchen@127.0.0.1:5070"]}}

    async def call_device(self, device, agent):
        self.calls.append((device, agent))
        if device != "kitchen":
            raise LookupError("device %s is not registered" % device)
        return {"call_id": "abc", "device": device}


def test_control_socket_round_trip():
    async def main(path):
        relay = FakeRelay()
        server = control.ControlServer(relay, path)
        await server.start()
        try:
            assert oct(os.stat(path).st_mode & 0o777) == "0o600"
            reply = await control.request(path, {"op": "call", "device": "kitchen", "agent": None})
            assert reply == {"ok": True, "call_id": "abc", "device": "kitchen"}
            reply = await control.request(path, {"op": "call", "device": "attic"})
            assert reply == {"ok": False, "error": "device attic is not registered"}
            reply = await control.request(path, {"op": "status"})
            assert reply["registrations"]["kitchen"]
            assert (await control.request(path, {"op": "reboot"}))["ok"] is False
            # garbage and oversize lines get an error, the server keeps serving
            reader, writer = await asyncio.open_unix_connection(path)
            writer.write(b"x" * 5000 + b"\n")
            line = await reader.readline()
            assert json.loads(line)["ok"] is False
            writer.close()
            with pytest.raises(OSError, match="another relay"):
                await control.ControlServer(relay, path).start()
        finally:
            await server.stop()
        assert not os.path.exists(path)
        assert relay.calls == [("kitchen", None), ("attic", None)]

    with tempfile.TemporaryDirectory() as d:
        asyncio.run(main(os.path.join(d, "relay.sock")))


def test_stale_socket_file_is_replaced():
    async def main(path):
        open(path, "w").close()  # left over by a relay that died
        server = control.ControlServer(FakeRelay(), path)
        await server.start()
        assert (await control.request(path, {"op": "status"}))["ok"]
        await server.stop()

    with tempfile.TemporaryDirectory() as d:
        asyncio.run(main(os.path.join(d, "relay.sock")))
