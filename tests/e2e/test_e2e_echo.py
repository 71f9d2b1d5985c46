# The whole path with the offline echo backend (what `make demo` runs without an API key):
# the device's microphone reaches the relay, the echo plays each utterance back, and it
# reaches the device's speaker; the second sentence interrupts the first one's echo.
import asyncio
import os

from e2e import (
    DEMO_WAV,
    at_rate,
    band,
    echo_system,
    find,
    pieces_in_order,
    read_wav,
    speech_segments,
    until,
    write_wav,
)

RATE = 8000
PIECE = RATE // 5


def speaker_8k(system):
    rate, spk = read_wav(system.speaker)
    return at_rate(spk, rate, RATE)


def test_the_echo_plays_the_microphone_back_to_the_speaker(work):
    rate, x = read_wav(DEMO_WAV)
    start, end = speech_segments(x, rate)[0]
    mic = os.path.join(work, "mic.wav")
    write_wav(mic, x[: end + rate // 5], rate)
    out = {}

    async def scenario():
        async with echo_system(work, mic=mic) as system:
            call = await system.place_call()
            backend = call.media.backend
            await until(lambda: call.media.stats["rtp_out"] > 0, 10, "the echo to start")
            await until(lambda: not call.media.playout.playing, 10, "the echo to end")
            await asyncio.sleep(0.4)
            out["stats"] = dict(call.media.stats)
            await system.hangup("relay")
            out["idle"] = await system.wait_idle()
            out["system"], out["backend"] = system, backend

    asyncio.run(scenario())
    system = out["system"]
    assert out["backend"].truncations == []  # nobody interrupted
    _, scores = pieces_in_order(band(x[start:end]), band(speaker_8k(system)), PIECE)
    assert len(scores) >= 12 and min(scores) > 0.95, scores
    media = system.device_result["calls"][-1]["media"]
    assert media["rx_packets"] == out["stats"]["rtp_out"] and media["lost"] == 0
    assert system.device_result["calls"][-1]["reason"] == "remote_bye"


def test_the_second_sentence_cuts_the_echo_of_the_first(work):
    rate, x = read_wav(DEMO_WAV)
    (s1, e1), (s2, e2) = speech_segments(x, rate)[:2]
    out = {}

    async def scenario():
        async with echo_system(work, mic=DEMO_WAV) as system:
            call = await system.place_call()
            loop = asyncio.get_running_loop()
            up = loop.time()
            backend = call.media.backend
            await until(lambda: backend.truncations, 15, "the barge-in")
            # the microphone's WAV ends, the echo's hangover passes, the second echo plays
            await until(lambda: loop.time() - up > len(x) / rate + 0.8
                        and not call.media.playout.playing, 20, "the second echo to end")
            await asyncio.sleep(0.4)
            await system.hangup("device")
            await system.wait_idle()
            out["system"], out["backend"] = system, backend

    asyncio.run(scenario())
    system, backend = out["system"], out["backend"]
    (item, end_ms), = backend.truncations
    assert item == "echo_out_1"
    assert backend.cancels == []  # the echo had sent its whole answer: nothing to cancel
    assert 0 < end_ms < (e1 - s1) * 1000 // rate  # cut before the first sentence's end
    spk = band(speaker_8k(system))
    first, second = band(x[s1:e1]), band(x[s2:e2])
    head = first[: 2 * PIECE]
    assert find(head, spk)[1] > 0.9  # the echo of the first sentence began...
    tail = first[-3 * PIECE :]
    assert find(tail, spk)[1] < 0.5  # ...and its end was never played
    _, scores = pieces_in_order(second, spk, PIECE)
    assert min(scores) > 0.95, scores  # the second sentence's echo played whole
