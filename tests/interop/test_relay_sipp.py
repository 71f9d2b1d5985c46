# SIPp calls the relay on loopback: digest admission, G.711 streaming, BYE, allowlist, 403.
import asyncio
import os

import pytest
from peers_harness import g711_test_audio, require, run_sipp
from relay_fixtures import RelayUnderTest, relay_config

pytestmark = pytest.mark.interop

FRAMES = 50  # one second of 20 ms frames


def stream_keys(path, codec):
    pt = 0 if codec == "PCMU" else 8
    return {
        "stream": "%s,1,%d,%s/8000" % (path, pt, codec),
        "pt": pt,
        "codec": "%s/8000" % codec,
        "caller": "kitchen",
    }


def sipp_call(tmp_path, cfg, scenario, keys, extra, succeeds=True, **sipp_options):
    """One SIPp call (tests/interop/peers/sipp/`scenario`) to a relay run for it with `cfg`.
    With `succeeds`, SIPp must exit 0 (its trace says why not) before the relay is waited
    idle. Returns (SIPp's exit status, its message trace, the relay once idle)."""

    async def main():
        async with RelayUnderTest(cfg) as rt:
            status, trace = await run_sipp(
                rt.address, scenario, str(tmp_path), keys=keys, extra=extra, **sipp_options
            )
            if succeeds:
                assert status == 0, trace[-3000:]
            await rt.wait_idle()
            return status, trace, rt

    return asyncio.run(main())


def write_audio(tmp_path, codec):
    audio = g711_test_audio(FRAMES, seed=7 if codec == "PCMU" else 8)
    path = tmp_path / ("caller.%s" % codec.lower())
    path.write_bytes(audio)
    return str(path), audio


@pytest.mark.parametrize("codec", ["PCMU", "PCMA"])
def test_sipp_digest_call_streams_g711_to_backend(tmp_path, codec):
    require("sipp")
    path, audio = write_audio(tmp_path, codec)
    _, trace, rt = sipp_call(
        tmp_path, relay_config(tmp_path), "uac_digest_stream.xml", stream_keys(path, codec),
        ["-s", "assistant", "-au", "kitchen", "-ap", "kitchen-pw", "-d", "2000"],
    )
    # first a 401 challenge, then the authenticated INVITE was answered with our codec
    assert "SIP/2.0 401 Unauthorized" in trace and "algorithm=MD5" in trace
    assert "m=audio" in trace and "RTP/AVP %d" % (0 if codec == "PCMU" else 8) in trace
    (backend,) = rt.backends
    assert backend.config.codec == codec.lower() and backend.native_format == codec.lower()
    # every payload SIPp streamed reached the backend, byte for byte, in order
    assert len(backend.frames) == FRAMES
    assert all(len(f) == 160 for f in backend.frames)
    assert backend.audio == audio
    assert backend.closed  # BYE from SIPp closed the backend session
    assert rt.relay.guard.stats["admitted"] == 1


def test_wrong_password_gets_403_and_is_logged(tmp_path, caplog):
    require("sipp")
    path, _ = write_audio(tmp_path, "PCMU")

    def call(user, password):  # the scenario expects the 403: SIPp exits 0 when it comes
        return sipp_call(
            tmp_path, relay_config(tmp_path), "uac_digest_rejected.xml",
            dict(stream_keys(path, "PCMU"), caller=user),
            ["-s", "assistant", "-au", user, "-ap", password],
        )

    _, trace, rt = call("kitchen", "not-the-password")
    assert "SIP/2.0 403 Forbidden" in trace
    assert rt.backends == []  # no media session was ever started
    assert any("403 to INVITE" in r.getMessage() for r in caplog.records)
    # an unknown user gets exactly the same answer: nothing tells the two apart
    _, trace2, _ = call("nobody", "whatever")
    assert "SIP/2.0 403 Forbidden" in trace2


def test_allowlisted_source_gets_in_without_digest(tmp_path):
    require("sipp")
    path, audio = write_audio(tmp_path, "PCMU")
    cfg = relay_config(tmp_path, admission={"allowlist": ["127.0.0.0/8"]})
    _, _, rt = sipp_call(
        tmp_path, cfg, "uac_stream.xml", stream_keys(path, "PCMU"), ["-s", "parrot", "-d", "2000"]
    )
    (backend,) = rt.backends
    assert backend.audio == audio
    assert backend.config.instructions == rt.relay.cfg.agent("parrot").instructions
    assert rt.relay.guard.stats["challenged"] == 0


def test_not_allowlisted_without_credentials_gets_401(tmp_path):
    """The allowlist scenario from an address outside the allowlist: challenged, not served."""
    require("sipp")
    path, _ = write_audio(tmp_path, "PCMU")
    cfg = relay_config(tmp_path, admission={"allowlist": ["10.0.0.0/8"]})
    status, trace, rt = sipp_call(
        tmp_path, cfg, "uac_stream.xml", stream_keys(path, "PCMU"),
        ["-s", "assistant", "-d", "500"], succeeds=False, timeout=40,
    )
    assert status != 0  # SIPp expected a 200
    assert "SIP/2.0 401 Unauthorized" in trace
    assert rt.backends == []


def test_calls_log_written(tmp_path):
    require("sipp")
    path, _ = write_audio(tmp_path, "PCMU")
    sipp_call(
        tmp_path, relay_config(tmp_path), "uac_digest_stream.xml", stream_keys(path, "PCMU"),
        ["-s", "assistant", "-au", "kitchen", "-ap", "kitchen-pw", "-d", "1200"],
    )
    logs = os.listdir(tmp_path / "calls")
    assert len(logs) == 1
    text = (tmp_path / "calls" / logs[0]).read_text()
    assert '"event": "started"' in text and '"event": "ended"' in text
    assert "kitchen-pw" not in text
