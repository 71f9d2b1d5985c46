# The offline echo backend through a whole media session over loopback UDP: the caller's
# utterance comes back bit for bit, barge-in works without any service, and the PCM path
# (G.711 -> 24 kHz -> G.711) runs end to end.
import asyncio

import numpy as np
import pytest
from rtp_peer import RtpPeer

from sipmote.relay import g711_tables
from sipmote.relay.backends import BackendError, SessionConfig, create_backend
from sipmote.relay.backends.echo import EchoBackend
from sipmote.relay.media import STATIC_PT, MediaSession

SILENCE = {"pcmu": b"\xff" * 160, "pcma": b"\xd5" * 160}


def run(coro, timeout=30):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def tone(codec, freq, ms, amplitude=8000):
    n = ms * 8
    pcm = (amplitude * np.sin(2 * np.pi * freq * np.arange(n) / 8000)).astype(np.int16)
    return g711_tables.encode(codec, pcm)


def frames(data):
    return [data[i : i + 160] for i in range(0, len(data), 160)]


async def open_call(codec="pcmu", backend=None):
    peer = await RtpPeer.open(pt=STATIC_PT[codec])
    backend = backend or create_backend("echo")
    session = MediaSession(("127.0.0.1", 0), peer.address, codec, backend,
                           SessionConfig(codec=codec), call_id="echo-test")
    await session.start()
    peer.dest = ("127.0.0.1", session.local_port)
    return peer, backend, session


@pytest.mark.parametrize("codec", ["pcmu", "pcma"])
def test_echo_plays_the_callers_utterance_back_bit_for_bit(codec):
    async def main():
        peer, backend, session = await open_call(codec)
        words = tone(codec, 440, 600)
        # 300 ms silence, 600 ms "speech", 700 ms silence (the hangover is 500 ms)
        await peer.stream([SILENCE[codec]] * 15 + frames(words) + [SILENCE[codec]] * 35, 0.002)
        # played back: 140 ms pre-roll (200 ms with the first 60 loud ms), the words, 100 ms
        expected = SILENCE[codec] * 7 + words + SILENCE[codec] * 5
        await peer.wait_packets(len(expected) // 160)
        await asyncio.sleep(0.1)
        got = b"".join(p.payload for p in peer.received)
        assert got == expected
        assert [p.marker for p in peer.received] == [1] + [0] * (len(peer.received) - 1)
        await session.stop("done")

    run(main())


def test_echo_barge_in_stops_playback_and_truncates_at_what_was_played():
    async def main():
        peer, backend, session = await open_call()
        long_words = tone("pcmu", 300, 3000)
        await peer.stream(frames(long_words) + [SILENCE["pcmu"]] * 26, 0.001)
        await peer.wait_packets(25)  # the echo is playing
        await peer.stream(frames(tone("pcmu", 500, 200)), 0.001)  # the caller talks over it
        await asyncio.sleep(0.3)
        count = len(peer.received)
        await asyncio.sleep(0.2)
        assert len(peer.received) == count  # playback stopped
        (item_id, audio_end_ms), = backend.truncations
        assert item_id == "echo_out_1"
        heard = b"".join(p.payload for p in peer.received)
        assert audio_end_ms == len(heard) // 8
        assert heard == long_words[: len(heard)]
        assert backend.cancels == []  # the echo had finished "generating": nothing to cancel
        assert session.stats["barge_ins"] == 1
        await session.stop("done")

    run(main())


def test_echo_through_the_pcm_path_returns_the_same_tone():
    async def main():
        backend = EchoBackend(format="pcm16_24k")
        peer, backend, session = await open_call("pcma", backend)
        assert backend.native_format == "pcm16_24k"
        words = tone("pcma", 700, 800)
        await peer.stream([SILENCE["pcma"]] * 10 + frames(words) + [SILENCE["pcma"]] * 40,
                          0.002)
        await peer.wait_packets(45)
        await asyncio.sleep(0.3)
        out = g711_tables.decode("pcma", b"".join(p.payload for p in peer.received))
        loud = np.nonzero(np.abs(out) > 2000)[0]
        # the tone's length survives the two conversions (within the resamplers' edges)
        assert abs((loud[-1] - loud[0]) - 6400) < 80
        y = out[loud[0] + 400 : loud[-1] - 400].astype(np.float64)
        spectrum = np.abs(np.fft.rfft(y * np.hanning(len(y))))
        assert abs(np.argmax(spectrum) * 8000 / len(y) - 700) < 15
        await session.stop("done")

    run(main())


def test_echo_rejects_unknown_format():
    with pytest.raises(BackendError):
        EchoBackend(format="opus")


def test_session_rejects_a_codec_it_cannot_carry():
    with pytest.raises(ValueError):
        MediaSession(("127.0.0.1", 0), ("127.0.0.1", 9), "g722", create_backend("echo"))


def test_caller_silence_ends_the_session_after_the_rtp_timeout():
    async def main():
        peer = await RtpPeer.open()
        session = MediaSession(("127.0.0.1", 0), peer.address, "pcmu", create_backend("echo"),
                               rtp_timeout_s=0.3)
        await session.start()
        reason = await asyncio.wait_for(session.ended, 5)
        assert "no RTP" in reason
        peer.close()

    run(main())


def test_a_new_ssrc_is_followed_only_when_it_persists():
    async def main():
        peer, backend, session = await open_call()
        seen = []
        real_send = backend.send_audio

        async def spy(payload):
            seen.append(bytes(payload))
            await real_send(payload)

        backend.send_audio = spy
        peer.send(b"\x01" * 160)
        peer.send(b"\x02" * 160, ssrc=0xDEAD)  # one stray packet: dropped
        peer.send(b"\x03" * 160)
        for i in range(4):  # the caller restarted its stream: followed after 3 packets
            peer.send(bytes([0x10 + i]) * 160, ssrc=0xBEEF, seq=100 + i)
        await asyncio.sleep(0.2)
        assert [p[0] for p in seen] == [0x01, 0x03, 0x12, 0x13]
        assert session.stats["wrong_ssrc"] == 3
        await session.stop("done")

    run(main())


def test_symmetric_rtp_latches_onto_the_first_source():
    async def main():
        peer = await RtpPeer.open()
        # the SDP named another host (a NAT's private address); the packets come from peer
        session = MediaSession(("127.0.0.1", 0), ("127.0.0.9", 4000), "pcmu",
                               create_backend("echo"), symmetric_rtp=True)
        await session.start()
        peer.dest = ("127.0.0.1", session.local_port)
        words = tone("pcmu", 440, 300)
        await peer.stream(frames(words) + [SILENCE["pcmu"]] * 30, 0.002)
        await peer.wait_packets(15)  # the echo came back to the real source
        assert session.remote == tuple(peer.address)
        await session.stop("done")

    run(main())
