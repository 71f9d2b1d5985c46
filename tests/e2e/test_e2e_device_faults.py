# Two ways the network treats a phone that the full-system runs hit by chance, made to happen
# every time: a burst of RTP (the relay's pacing clock caught up after a stall, as it does
# after any scheduling hiccup, and as Wi-Fi delivers packets anyway) and an ICMP "port
# unreachable" (the far end closed its RTP port while we were still sending: a relay or PBX
# ending the media just before its BYE). A test is marked xfail(strict=True) while the
# device has the fault named in its reason: once fixed it passes, and strict makes the suite
# say so (then drop the marker).
import asyncio
import os
import time

import pytest
from e2e import (
    DEMO_WAV,
    EchoNow,
    FakeAgent,
    at_rate,
    encode,
    pieces_in_order,
    read_wav,
    realtime_system,
    speech_segments,
    sweep,
    write_wav,
)
from simdevice import require_micropython

# Every packet of the burst now reaches the device (rx_packets == rtp_out holds: phone.media
# sizes its reads and voip.rtp_split splits what merges). What still fails is the one delay:
STALL_OUTLASTS_JITTER_BUFFER = (
    "the device's jitter buffer holds 20-40 ms ahead (target 40 ms, jitter_ms caps only the "
    "maximum), so the relay's 70 ms stall underruns it: it conceals, re-anchors on the burst "
    "(the speaker's delay grows by 40-50 ms) and later trims a 10 ms frame to shed it")


@pytest.fixture
def work(tmp_path):
    require_micropython()
    return str(tmp_path)


async def until(predicate, timeout, what):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("timed out after %s s waiting for %s" % (timeout, what))
        await asyncio.sleep(0.01)


@pytest.mark.xfail(strict=True, reason=STALL_OUTLASTS_JITTER_BUFFER)
def test_every_packet_of_a_burst_reaches_the_speaker(work):
    rate, x = read_wav(DEMO_WAV)
    _, end = speech_segments(x, rate)[0]
    mic = os.path.join(work, "mic.wav")
    write_wav(mic, x[: end + rate // 5], rate)
    answer = sweep(1.6)
    agent = FakeAgent(reply=encode("pcmu", answer))
    out = {}

    async def scenario():
        async with realtime_system(work, agent=agent, mic=mic) as (system, fake):
            call = await system.place_call()
            await until(lambda: call.media.stats["rtp_out"] >= 20, 15, "the answer to play")
            time.sleep(0.07)  # the relay's loop stalls 70 ms: its clock then sends 3 at once
            await until(lambda: not call.media.playout.playing, 5, "the answer to be sent")
            await asyncio.sleep(0.4)
            out["rtp_out"] = call.media.stats["rtp_out"]
            out["late"] = call.media.stats["late_frames"]
            await system.hangup("device")
            await system.wait_idle()
            out["system"] = system

    asyncio.run(scenario())
    system = out["system"]
    assert out["late"] >= 1  # the stall happened: packets went out back to back
    media = system.device_result["calls"][-1]["media"]
    assert media["rx_packets"] == out["rtp_out"] == len(answer) // 160, media
    rate, spk = read_wav(system.speaker)
    _, scores = pieces_in_order(answer, at_rate(spk, rate, 8000), 1600)
    assert min(scores) > 0.9, scores


def test_the_device_survives_the_far_end_closing_its_rtp_port_first(work):
    out = {}

    async def scenario():
        async with realtime_system(work, agent=EchoNow(), tone=440) as (system, fake):
            call = await system.place_call()
            await asyncio.sleep(0.4)
            # the relay's RTP socket goes away while the dialog lives on: what the device
            # sends next is answered with ICMP port unreachable
            call.media._transport.close()
            await asyncio.sleep(0.3)
            out["alive"] = system.device.proc.poll() is None
            status = await system.device_status()
            assert status["call"] is not None  # RTP silence hangs up only after 10 s
            await system.hangup("relay")
            await system.wait_idle()
            out["system"] = system

    asyncio.run(scenario())
    assert out["alive"]
    system = out["system"]
    assert system.device_exit == 0
    assert system.device_result["calls"][-1]["reason"] == "remote_bye"
