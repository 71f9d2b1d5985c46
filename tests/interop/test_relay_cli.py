# `sipmote relay` as a user runs it: a SIPp device registers, `sipmote relay call kitchen` rings
# it, `sipmote relay status` shows the call, SIGTERM hangs up with BYE and exits cleanly.
import asyncio
import json
import os
import signal
import sys

import pytest
from peers_harness import SIPP_DIR, Process, free_udp_port, require, run_sipp, sipp_argv

pytestmark = pytest.mark.interop


def write_config(tmp_path, port):
    path = tmp_path / "relay.toml"
    path.write_text(
        "[sip]\n"
        'bind = "127.0.0.1"\n'
        "port = %d\n"
        "rtp_port_min = 41000\nrtp_port_max = 41999\n"
        "[backend]\n"
        'kind = "echo"\n'
        "[[agents]]\n"
        'name = "assistant"\n'
        "[[devices]]\n"
        'user = "kitchen"\n'
        'password = "kitchen-pw"\n'
        "[control]\n"
        'socket = "relay.sock"\n'
        "[logging]\n"
        'calls_dir = "calls"\n' % port
    )
    return str(path)


async def sipmote(*args, timeout=30):
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sipmote.cli",
        "relay",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    return proc.returncode, out.decode(), err.decode()


def test_cli_relay_rings_a_registered_device_and_hangs_up_on_sigterm(tmp_path):
    require("sipp")
    port = free_udp_port()
    config = write_config(tmp_path, port)
    device_port = free_udp_port()

    async def main():
        relay = Process(
            "relay",
            [sys.executable, "-m", "sipmote.cli", "relay", "--config", config],
            str(tmp_path),
            str(tmp_path / "relay.log"),
        )
        await relay.start()
        uas = None
        try:
            for _ in range(100):  # until the control socket answers
                if os.path.exists(tmp_path / "relay.sock"):
                    break
                await asyncio.sleep(0.05)
            status, trace = await run_sipp(
                "127.0.0.1:%d" % port,
                "register_auth.xml",
                str(tmp_path),
                local_port=device_port,
                extra=["-s", "kitchen", "-au", "kitchen", "-ap", "kitchen-pw"],
            )
            assert status == 0, trace[-3000:] + relay.log()
            uas = Process(
                "sipp-uas",
                sipp_argv(
                    "127.0.0.1:%d" % port,
                    os.path.join(SIPP_DIR, "uas_answer.xml"),
                    str(tmp_path),
                    device_port,
                    media_port=free_udp_port(even=True),
                    keys={"pt": 0, "codec": "PCMU/8000"},
                    extra=["-rtp_echo"],
                ),
                str(tmp_path),
                str(tmp_path / "uas.log"),
            )
            await uas.start()
            await asyncio.sleep(0.3)  # SIPp binds its port
            rc, out, err = await sipmote("--config", config, "call", "kitchen", "--timeout", "10")
            assert rc == 0, err + relay.log()
            call = json.loads(out)
            rc, out, err = await sipmote(
                "call", "kitchen", "--control", str(tmp_path / "relay.sock"), "--agent", "nobody"
            )
            assert rc == 1 and "no agent named 'nobody'" in err
            rc, out, err = await sipmote("--config", config, "status")
            assert rc == 0, err
            status = json.loads(out)
            await asyncio.sleep(0.5)
            relay.proc.send_signal(signal.SIGTERM)
            relay_rc = await relay.wait(15)
            uas_rc = await uas.wait(15)
            return call, status, relay_rc, uas_rc, relay.log()
        finally:
            if uas is not None:
                await uas.stop()
            await relay.stop()

    call, status, relay_rc, uas_rc, log = asyncio.run(main())
    assert call["user"] == "kitchen"
    assert call["direction"] == "out" and call["codec"] == "PCMU" and call["agent"] == "assistant"
    assert [c["call_id"] for c in status["calls"]] == [call["call_id"]]
    assert status["registrations"]["kitchen"][0]["source"] == "127.0.0.1:%d" % device_port
    assert relay_rc == 0, log
    assert uas_rc == 0  # SIPp got its BYE and answered it
    assert "call ended: relay shutting down" in log
    assert not os.path.exists(tmp_path / "relay.sock")  # removed on the way out
    assert "kitchen-pw" not in log
