# baresip 1.0 calls the relay (digest, PCMU/PCMA from a WAV file), and registers with the relay
# so that the relay can ring it (`sipmote relay call DEVICE`).
import array
import asyncio
import math
import os
import wave

import pytest
from peers_harness import Process, free_port_block, free_udp_port, require
from relay_fixtures import RelayUnderTest, relay_config

from voip import g711

pytestmark = pytest.mark.interop
MODULES = "/usr/lib/baresip/modules"
SECONDS = 2


def tone_wav(path, seconds=SECONDS):
    """8 kHz mono 16-bit: a 440 Hz tone whose amplitude rises, so every frame differs."""
    n = 8000 * seconds
    samples = array.array(
        "h",
        (int(8000 * (1 + 2 * i / n) * math.sin(2 * math.pi * 440 * i / 8000)) for i in range(n)),
    )
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(samples.tobytes())
    return samples


def baresip_home(tmp_path, relay_port, codec, answer=False, register=False):
    """A baresip config dir: SIP and RTP on 127.0.0.1, audio from a WAV file, received audio
    to a null bridge device, the menu module for -e commands."""
    require("baresip")
    if not os.path.exists(os.path.join(MODULES, "aufile.so")):
        pytest.skip("baresip modules missing in %s: apt-get install baresip" % MODULES)
    home = tmp_path / "baresip"
    home.mkdir(exist_ok=True)
    sip_port = free_udp_port()
    rtp = free_port_block(20)
    (home / "config").write_text(
        "\n".join(
            [
                "poll_method epoll",
                "sip_listen 127.0.0.1:%d" % sip_port,
                "net_interface 127.0.0.1",
                "audio_player aubridge,sink",
                "audio_alert aubridge,alert",
                "audio_source aufile,%s" % (tmp_path / "tone.wav"),
                "ausrc_srate 8000",
                "auplay_srate 8000",
                "rtp_ports %d-%d" % (rtp, rtp + 19),
                "module_path %s" % MODULES,
                "module g711.so",
                "module aufile.so",
                "module aubridge.so",
                "module_tmp account.so",
                "module_app menu.so",
                "",
            ]
        )
    )
    params = "auth_pass=kitchen-pw;audio_codecs=%s" % codec
    params += ";regint=60" if register else ";regint=0"
    if answer:
        params += ";answermode=auto"
    (home / "accounts").write_text("<sip:kitchen@127.0.0.1:%d>;%s\n" % (relay_port, params))
    return str(home), sip_port


@pytest.mark.parametrize("codec", ["PCMU", "PCMA"])
def test_baresip_calls_the_relay(tmp_path, codec):
    samples = tone_wav(tmp_path / "tone.wav")

    async def main():
        async with RelayUnderTest(relay_config(tmp_path)) as rt:
            home, _ = baresip_home(tmp_path, rt.port, codec)
            argv = [
                require("baresip"),
                "-f",
                home,
                "-e",
                "/dial sip:assistant@%s" % rt.address,
                "-t",
                str(SECONDS + 4),
            ]
            proc = await Process("baresip", argv, str(tmp_path), str(tmp_path / "bs.log")).start()
            try:
                await proc.wait(SECONDS + 15)  # it hangs up (BYE) at the end of the file
            finally:
                await proc.stop()
            await rt.wait_idle()
            return rt, proc.log()

    rt, bslog = asyncio.run(main())
    assert "Call established" in bslog, bslog
    (backend,) = rt.backends
    assert backend.closed and backend.config.codec == codec.lower()
    pcm = bytearray(len(backend.audio) * 2)
    decode = g711.ulaw_decode if codec == "PCMU" else g711.alaw_decode
    decode(backend.audio, pcm)
    got = array.array("h")
    got.frombytes(bytes(pcm))
    # all of baresip's file arrived (a frame or two of slack at either end)...
    assert len(got) >= len(samples) - 320, (len(got), len(samples))
    # ...and it is the file: each decoded sample within one G.711 step of the source
    worst = 0
    for i in range(min(len(got), len(samples))):
        worst = max(worst, abs(got[i] - samples[i]) / (abs(samples[i]) / 16 + 32))
    assert worst <= 1.0, worst


def test_relay_rings_a_baresip_registered_with_it(tmp_path):
    tone_wav(tmp_path / "tone.wav", seconds=10)

    async def main():
        async with RelayUnderTest(relay_config(tmp_path)) as rt:
            home, sip_port = baresip_home(tmp_path, rt.port, "PCMU", answer=True, register=True)
            argv = [require("baresip"), "-f", home, "-t", "20"]
            proc = await Process("baresip", argv, str(tmp_path), str(tmp_path / "bs.log")).start()
            try:
                loop = asyncio.get_running_loop()
                deadline = loop.time() + 10
                while not rt.relay.bindings.lookup("kitchen", rt.relay.endpoint.now_ms()):
                    assert loop.time() < deadline, "baresip did not register:\n" + proc.log()
                    await asyncio.sleep(0.1)
                status = rt.relay.status()
                summary = await rt.relay.call_device("kitchen", "parrot", timeout=10)
                await asyncio.sleep(1.0)  # media flows: baresip's file to the backend
                ended = rt.relay.hangup(summary["call_id"])
                assert await asyncio.wait_for(ended, 5) == "hung up by the relay"
                await rt.wait_idle()
            finally:
                await proc.stop()
            return rt, status, summary, sip_port, proc.log()

    rt, status, summary, sip_port, bslog = asyncio.run(main())
    (binding,) = status["registrations"]["kitchen"]
    assert binding["source"] == "127.0.0.1:%d" % sip_port and binding["expires"] > 0
    assert summary["direction"] == "out" and summary["codec"] == "PCMU"
    assert summary["agent"] == "parrot"
    (backend,) = rt.backends
    assert len(backend.frames) >= 25  # about a second of baresip's audio reached the agent
    assert backend.closed
    assert "Call established" in bslog or "answered" in bslog.lower(), bslog
