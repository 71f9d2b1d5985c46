# The relay registers with Kamailio (digest) and takes a call Kamailio routes to it from SIPp.
import asyncio

import pytest
from peers_harness import Kamailio, g711_test_audio, require, run_sipp
from relay_fixtures import RelayUnderTest, relay_config

pytestmark = pytest.mark.interop


async def wait_for(predicate, timeout, what):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


def pbx_config(tmp_path, port, password="relaypw"):
    return relay_config(
        tmp_path,
        pbx={
            "registrar": "127.0.0.1:%d" % port,
            "user": "relay",
            "password": password,
            "expires": 120,
            "agent": "parrot",
        },
    )


def test_registers_with_kamailio_and_answers_a_routed_call(tmp_path):
    require("sipp")
    require("kamailio")
    audio = g711_test_audio(50, seed=11)
    path = tmp_path / "alice.pcmu"
    path.write_bytes(audio)

    async def main():
        kam = await Kamailio(str(tmp_path)).start()
        try:
            async with RelayUnderTest(pbx_config(tmp_path, kam.port)) as rt:
                pbx = rt.relay.pbx
                await wait_for(lambda: pbx.client and pbx.client.registered, 10, "registration")
                status, trace = await run_sipp(
                    "127.0.0.1:%d" % kam.port,
                    "uac_proxy_auth_stream.xml",
                    str(tmp_path),
                    keys={
                        "stream": "%s,1,0,PCMU/8000" % path,
                        "pt": 0,
                        "codec": "PCMU/8000",
                        "caller": "alice",
                    },
                    extra=["-s", "relay", "-au", "alice", "-ap", "alicepw", "-d", "2000"],
                )
                assert status == 0, trace[-4000:] + "\n--- kamailio:\n" + kam.log()
                await rt.wait_idle()
                registered = rt.relay.status()["pbx"]
            return rt, trace, registered, kam.log()
        finally:
            await kam.stop()

    rt, trace, registered, kam_log = asyncio.run(main())
    assert registered["registered"] and registered["user"] == "relay"
    assert "SIP/2.0 407" in trace  # Kamailio authenticated the caller...
    assert "Record-Route:" in trace  # ...and stayed in the path: ACK and BYE went through it
    assert "routed to sip:relay@127.0.0.1" in kam_log
    (backend,) = rt.backends
    assert backend.config.instructions == rt.relay.cfg.agent("parrot").instructions
    assert backend.audio == audio  # SIPp's payloads, byte for byte, through the PBX call
    assert rt.relay.guard.stats["admitted"] == 1 and rt.relay.guard.stats["challenged"] == 0
    assert rt.relay.pbx.last_event == "unregistered"  # stop() took the binding away


def test_wrong_pbx_password_is_reported_and_retried_later(tmp_path):
    require("kamailio")

    async def main():
        kam = await Kamailio(str(tmp_path)).start()
        try:
            async with RelayUnderTest(pbx_config(tmp_path, kam.port, password="wrong")) as rt:
                pbx = rt.relay.pbx
                await wait_for(lambda: pbx.last_event == "registration_failed", 10, "failure")
                return pbx.status(), pbx.client.next_deadline() - rt.relay.endpoint.now_ms()
        finally:
            await kam.stop()

    status, retry_in = asyncio.run(main())
    assert status["registered"] is False
    assert retry_in >= 1000  # backoff, not a tight loop of REGISTERs
