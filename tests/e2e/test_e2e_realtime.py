# The whole path on 127.0.0.1: the device (the real firmware on the MicroPython unix port)
# calls the relay, whose OpenAI backend talks to the fake Realtime server (every client event
# validated against the openai SDK's models), and back. What the fake server hears is
# compared with the device's microphone WAV, what the device's speaker plays with the audio
# the fake server sent.
import asyncio
import os

import pytest
from e2e import (
    DEMO_WAV,
    EchoNow,
    FakeAgent,
    at_rate,
    band,
    decode,
    encode,
    find,
    pieces_in_order,
    played_frames,
    read_wav,
    realtime_system,
    speech_segments,
    sweep,
    until,
    write_wav,
)

RATE = 8000
PIECE = RATE // 5  # 200 ms


def first_sentence(work):
    """The demo's first sentence alone (then quiet) as the microphone's WAV."""
    rate, x = read_wav(DEMO_WAV)
    (start, end), _second = speech_segments(x, rate)[:2]
    path = os.path.join(work, "mic.wav")
    write_wav(path, x[: end + rate // 5], rate)
    return path, x[start:end]


def test_microphone_reaches_the_server_and_the_answer_reaches_the_speaker(work):
    mic, speech = first_sentence(work)
    answer = sweep(2.0)
    agent = FakeAgent(reply=encode("pcmu", answer))
    out = {}

    async def scenario():
        async with realtime_system(work, agent=agent, mic=mic) as (system, fake):
            call = await system.place_call()
            conn = await fake.connection(0)
            await until(lambda: agent.responses, 15, "the scripted answer")
            await until(lambda: not call.media.playout.playing, 5, "the answer to be sent")
            await asyncio.sleep(0.4)  # the device's jitter buffer and speaker queue play out
            out["rtp_out"] = call.media.stats["rtp_out"]
            await system.hangup("device")
            out["idle"] = await system.wait_idle()
            await until(conn.closed.is_set, 5, "the backend's WebSocket to close")
            out["conn"], out["fake"], out["system"] = conn, fake, system

    asyncio.run(scenario())
    conn, fake, system = out["conn"], out["fake"], out["system"]
    assert fake.invalid == []
    kinds = [e["type"] for e in conn.received]
    assert kinds[0] == "session.update"
    assert conn.session["audio"]["input"]["format"] == {"type": "audio/pcmu"}
    assert set(kinds[1:]) == {"input_audio_buffer.append"}  # no barge-in: nothing else

    # uplink: the sentence the microphone heard reached the server, all of it, in order
    heard = decode("pcmu", conn.audio)
    assert len(agent.utterances(conn)) == 1
    base, scores = pieces_in_order(band(speech), band(heard), PIECE)
    assert len(scores) >= 12 and min(scores) > 0.95, scores
    assert len(heard) >= base + len(speech)

    # downlink: the server's answer reached the speaker, all of it, in order, one delay
    rate, spk = read_wav(system.speaker)
    spk = at_rate(spk, rate, RATE)
    base, scores = pieces_in_order(answer, spk, PIECE)
    media = system.device_result["calls"][-1]["media"]
    assert min(scores) > 0.9, (scores, media)
    assert len(scores) == len(answer) // PIECE
    assert out["rtp_out"] == len(answer) // 160  # the relay sent exactly the answer's frames

    # the device's own account: every packet of the answer arrived, none lost
    assert media["rx_packets"] == out["rtp_out"] and media["lost"] == 0
    assert system.device_result["calls"][-1]["reason"] == "control hangup"


def test_barge_in_from_the_microphone_cuts_the_answer_where_the_truncate_says(work):
    # The microphone says the demo's two sentences, 1.2 s apart. The fake server's VAD hears
    # the first end and answers with 4 s of audio, 300 ms bursts every 150 ms (twice real
    # time, as the service sends it); the second sentence starts while the answer plays and
    # is still being generated: speech_started, then the relay truncates and cancels.
    answer = sweep(4.0)
    agent = FakeAgent(reply=encode("pcmu", answer), bursts=(2400,), pause_s=0.15)
    out = {}

    async def scenario():
        async with realtime_system(work, agent=agent, mic=DEMO_WAV) as (system, fake):
            call = await system.place_call()
            conn = await fake.connection(0)
            truncate = await conn.wait_for("conversation.item.truncate", timeout=15)
            cancel = await conn.wait_for("response.cancel", timeout=5)
            out["truncate"], out["cancel"] = truncate, cancel
            await asyncio.sleep(0.5)  # what was sent plays out
            out["stats"] = dict(call.media.stats)
            await system.hangup("relay")
            out["idle"] = await system.wait_idle()
            out["conn"], out["fake"], out["system"] = conn, fake, system

    asyncio.run(scenario())
    conn, fake, system = out["conn"], out["fake"], out["system"]
    assert fake.invalid == []
    truncate = out["truncate"]
    utterances = agent.utterances(conn)
    assert len(utterances) == 2  # the cut happened during the second sentence
    (_, rid, item), = [r for r in agent.responses if r[0] is conn]
    assert truncate["item_id"] == item and truncate["content_index"] == 0
    assert out["cancel"].get("response_id") == rid
    end_ms = truncate["audio_end_ms"]
    assert 0 < end_ms < 4000 - 1000  # cut well before the end
    assert out["stats"]["barge_ins"] == 1

    # What the speaker played of the answer is exactly what the truncate says was sent:
    # count the 20 ms frames of the sweep found at the answer's delay.
    rate, spk = read_wav(system.speaker)
    spk = at_rate(spk, rate, RATE)
    base, corr = find(answer[:PIECE], spk)
    assert corr > 0.9
    frames = played_frames(answer, spk, base, 160)
    assert abs(frames * 20 - end_ms) <= 20, (frames * 20, end_ms)
    # and nothing of the rest of the answer was heard afterwards
    rest = answer[frames * 160 + 320 :]
    assert find(rest[:PIECE], spk[base + frames * 160 :])[1] < 0.5


@pytest.mark.parametrize("side", ["device", "relay"])
def test_hangup_from_either_side_releases_everything_on_both(work, side):
    out = {}

    async def scenario():
        async with realtime_system(work, agent=EchoNow(), tone=440) as (system, fake):
            before = await system.resources()
            for n in range(2):  # the second call finds everything as the first did
                call = await system.place_call()
                held = await system.resources()
                assert held["relay"]["calls"] == 1 and held["relay"]["rtp_ports_in_use"] == 1
                assert held["device"]["media"] and held["device"]["call"]["state"] == "in_call"
                assert held["device"]["sockets_over_baseline"] == 1  # its RTP socket
                await asyncio.sleep(0.6)
                await system.hangup(side)
                await asyncio.wait_for(asyncio.shield(call.ended), 5)
                after = await system.wait_idle()
                conn = await fake.connection(n)
                await until(conn.closed.is_set, 5, "the backend's WebSocket to close")
                out.setdefault("after", []).append(after)
            out["before"], out["system"], out["fake"] = before, system, fake

    asyncio.run(scenario())
    fake, system = out["fake"], out["system"]
    assert fake.invalid == []
    for after in out["after"]:
        assert after["relay"]["extra_tasks"] == [] and after["relay"]["fds_over_baseline"] <= 0
        assert after["device"]["sockets"] == out["before"]["device"]["sockets"]
    reasons = [c["reason"] for c in system.device_result["calls"]]
    assert reasons == (["control hangup"] * 2 if side == "device" else ["remote_bye"] * 2)
    assert all(c["media"]["rx_packets"] > 0 for c in system.device_result["calls"])
    assert system.device_exit == 0
