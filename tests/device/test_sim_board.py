# The unix_sim board's machine.I2S stand-in keeps the documented semantics: argument checks,
# blocking reads that cannot finish before their samples exist, non-blocking transfers whose
# handler runs through the scheduler, speaker WAVs with silence where playout ran dry, the
# PDM microphone's bit stream, and pins that two live I2S objects may not share.
import math
import os

from checks import raises

from phone import audio
from unix_sim import board as sim_board
from unix_sim import wav
from unix_sim.board import I2S, Pin

RUNTIMES = ("micropython",)
MICROPYTHON_HEAPSIZE = "512K"


def tmp(name):
    return "/tmp/sipmote-sim-%s-%s.wav" % (name, "".join("%02x" % b for b in os.urandom(4)))


def write_tone_wav(path, freq, seconds, rate=16000, amp=10000):
    w = wav.Writer(path, rate)
    buf = bytearray(2 * rate // 10)
    for block in range(int(seconds * 10)):
        for i in range(rate // 10):
            t = block * (rate // 10) + i
            v = int(amp * math.sin(2 * math.pi * freq * t / rate)) & 0xFFFF
            buf[2 * i], buf[2 * i + 1] = v & 0xFF, v >> 8
        w.write(buf, len(buf))
    w.close()


def read_wav(path):
    r = wav.Reader(path)
    data = bytearray(r.remaining)
    n = r.readinto(data, len(data))
    r.close()
    return r.rate, data[:n]


def get16(b, i):
    v = b[2 * i] | (b[2 * i + 1] << 8)
    return v - 0x10000 if v & 0x8000 else v


def mic_args(**kw):
    args = dict(sck=Pin(1), ws=Pin(2), sd=Pin(3), mode=I2S.RX, bits=32, format=I2S.MONO,
                rate=16000, ibuf=8192)
    args.update(kw)
    return args


def spk_args(**kw):
    args = dict(sck=Pin(4), ws=Pin(5), sd=Pin(6), mode=I2S.TX, bits=16, format=I2S.MONO,
                rate=16000, ibuf=2048)
    args.update(kw)
    return args


def test_constructor_checks_arguments_like_the_port():
    sim_board.configure()
    with raises(ValueError, match="invalid mode"):
        I2S(0, **mic_args(mode=5))
    with raises(ValueError, match="invalid bits"):
        I2S(0, **mic_args(bits=24))
    with raises(ValueError, match="invalid format"):
        I2S(0, **mic_args(format=9))
    with raises(ValueError, match="doesn't exist"):
        I2S(2, **mic_args())
    a = I2S(0, **mic_args())
    with raises(ValueError, match="pin 1 is in use by I2S(0)"):
        I2S(1, **spk_args(sck=Pin(1)))
    b = I2S(0, **mic_args())  # same id again: the old object is deinitialised
    with raises(OSError):
        a.readinto(bytearray(64))
    with raises(OSError, match="not configured for write"):
        b.write(bytearray(64))
    b.deinit()


def test_blocking_mic_reads_the_wav_as_left_justified_words_in_real_time():
    path = tmp("mic")
    write_tone_wav(path, 500, 0.5)
    try:
        sim_board.configure(mic_wav=path)
        m = I2S(0, **mic_args())
        buf = bytearray(1280)  # 20 ms of 32-bit mono
        for _ in range(10):
            assert m.readinto(buf) == 1280
        # ten 20 ms frames cannot have been captured in less than 200 ms
        assert sim_board.clock.now() - sim_board.mic.epoch >= 200000
        # the last frame holds samples 2880..3199 of the tone, in the top 16 bits of each word
        for i in range(0, 320, 37):
            t = 2880 + i
            want = int(10000 * math.sin(2 * math.pi * 500 * t / 16000))
            assert get16(buf, 2 * i + 1) == want and get16(buf, 2 * i) == 0
        m.deinit()
    finally:
        os.remove(path)


def test_non_blocking_transfers_call_the_handler_from_the_dma_task():
    import asyncio

    out_path = tmp("spk")
    sim_board.configure(speaker_wav=out_path, tone_hz=1000)
    m = I2S(0, **mic_args())
    s = I2S(1, **spk_args())
    done = {"mic": 0, "spk": 0}

    def on_mic(i2s):
        assert i2s is m
        done["mic"] += 1

    def on_spk(i2s):
        done["spk"] += 1

    m.irq(on_mic)
    s.irq(on_spk)
    mic_buf = bytearray(1280)
    spk_buf = bytearray(640)
    for i in range(320):  # a full-scale ramp we can recognise in the WAV
        spk_buf[2 * i], spk_buf[2 * i + 1] = (i * 100) & 0xFF, (i * 100) >> 8

    async def run():
        dma = asyncio.create_task(sim_board.dma_task())
        assert m.readinto(mic_buf) == 1280  # returns at once
        assert done["mic"] == 0
        s.write(spk_buf)
        for _ in range(200):
            await asyncio.sleep_ms(5)
            if done["mic"] and done["spk"]:
                break
        # 100 ms with nothing written: the speaker runs dry and plays silence
        await asyncio.sleep_ms(100)
        s.write(spk_buf)
        await asyncio.sleep_ms(30)
        dma.cancel()

    asyncio.run(run())
    m.deinit()
    s.deinit()
    sim_board.shutdown()
    try:
        assert done["mic"] == 1 and done["spk"] == 2
        assert 900 < audio.mean_abs16(mic_buf, 320) < 1 << 16  # the tone, as 32-bit words
        rate, data = read_wav(out_path)
        assert rate == 16000
        n = len(data) // 2
        starts = [i for i in range(n - 1) if get16(data, i) == 0 and get16(data, i + 1) == 100]
        assert len(starts) == 2, starts
        gap = starts[1] - starts[0] - 320
        assert gap >= 16000 * 100 // 1000 - 320, gap  # silence filled the dry spell
        for i in range(starts[0] + 320, starts[1]):
            assert get16(data, i) == 0
        assert sim_board.speaker.underruns >= 1
    finally:
        os.remove(out_path)


def test_pdm_microphone_bit_stream_decodes_to_the_wav():
    path = tmp("pdm")
    write_tone_wav(path, 1000, 0.3, amp=12000)
    try:
        sim_board.configure(mic_wav=path)
        up = audio.Uplink({"type": "pdm"})
        m = I2S(0, **mic_args(format=I2S.STEREO, rate=32000, ibuf=20480))
        for _ in range(5):
            m.readinto(up.raw_in)
            up.process()
        m.deinit()
        # the 1 kHz tone survives modulation and decoding at unity gain
        s = c = 0.0
        for i in range(160):
            v = get16(up.out, i)
            s += v * math.sin(2 * math.pi * 1000 * i / 8000)
            c += v * math.cos(2 * math.pi * 1000 * i / 8000)
        a = 2 * math.sqrt(s * s + c * c) / 160
        assert 11000 < a < 13000, a
    finally:
        os.remove(path)


def test_button_pins_follow_the_simulated_level():
    b = Pin(0, Pin.IN, Pin.PULL_UP)
    assert b.value() == 1
    sim_board.press(0)
    assert b.value() == 0
    sim_board.release(0)
    assert b.value() == 1
