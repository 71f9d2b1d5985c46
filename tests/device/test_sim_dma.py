# The simulator's I2S moves audio the way MicroPython's ESP32 port does: in DMA buffers of 256
# I2S frames, ibuf // (256 * DMA frame bytes) of them and never fewer than two, one whole
# buffer at a time. The transfers' completion times are stepped through by hand (the same
# arithmetic the DMA task uses), so nothing here depends on how fast the host runs.
from unix_sim import board as sim_board
from unix_sim.board import DMA_BUFFER_FRAMES, I2S, Pin, dma_buffers

RUNTIMES = ("micropython",)
MICROPYTHON_HEAPSIZE = "512K"


def speaker(ibuf, format=I2S.MONO):
    return I2S(1, sck=Pin(4), ws=Pin(5), sd=Pin(6), mode=I2S.TX, bits=16, format=format,
               rate=16000, ibuf=ibuf)


def mic(ibuf, rate=16000, format=I2S.MONO):
    return I2S(0, sck=Pin(1), ws=Pin(2), sd=Pin(3), mode=I2S.RX, bits=32, format=format,
               rate=rate, ibuf=ibuf)


def frames_at(dev, t_us):
    return (t_us - dev.t0) * dev.rate // 1000000


def test_the_dma_buffers_are_those_the_esp32_port_makes_of_ibuf():
    assert DMA_BUFFER_FRAMES == 256
    # speaker, 16-bit mono: 512 B per buffer; 16-bit stereo: 1024 B
    assert dma_buffers(I2S.TX, 16, I2S.MONO, 2048) == 4
    assert dma_buffers(I2S.TX, 16, I2S.MONO, 1024) == 2
    assert dma_buffers(I2S.TX, 16, I2S.MONO, 1535) == 2  # whole buffers only
    assert dma_buffers(I2S.TX, 16, I2S.MONO, 512) == 2  # ESP-IDF needs two
    assert dma_buffers(I2S.TX, 16, I2S.STEREO, 2048) == 2
    assert dma_buffers(I2S.TX, 32, I2S.MONO, 4096) == 4
    # microphone: always 32-bit stereo in DMA, 2 KB per buffer
    assert dma_buffers(I2S.RX, 32, I2S.MONO, 8192) == 4
    assert dma_buffers(I2S.RX, 32, I2S.STEREO, 20480) == 10
    sim_board.configure()
    s = speaker(1024)
    assert (s.buffers, s.capacity) == (2, 512)  # 32 ms at 16 kHz
    s.deinit()


def test_speaker_writes_return_as_dma_buffers_free_up():
    # 20 ms writes (320 frames) into two 16 ms buffers: each returns when the buffer its last
    # frame goes into has been played. So they return 16, 16, 16 and 32 ms apart (20 ms on
    # average), with 20, 24, 28 and 32 ms queued ahead of the next write.
    sim_board.configure()
    s = speaker(1024)
    done = []
    s.irq(lambda i2s: done.append(1))
    buf = bytearray(640)
    returned, queued = [], []
    for _ in range(9):
        s.write(buf)
        due = frames_at(s, s._pdue)
        s._service(s._pdue)  # the DMA task's completion at its due time
        returned.append(due - s.grid)
        queued.append(s.pos - max(due, s.grid))
    assert returned[:4] == [0, 256, 512, 768], returned
    steps = [b - a for a, b in zip(returned[1:], returned[2:])]
    assert steps == [256, 256, 512, 256, 256, 256, 512], steps
    assert queued[1:] == [384, 448, 512, 320, 384, 448, 512, 320], queued
    assert max(queued) == s.capacity  # never more than the DMA buffers hold
    s.deinit()


def test_mic_reads_return_once_the_buffer_holding_their_last_sample_is_full():
    sim_board.configure(tone_hz=1000)
    m = mic(8192)
    m.irq(lambda i2s: None)
    buf = bytearray(1280)  # 20 ms of 32-bit mono
    waits = []
    for _ in range(8):
        m.readinto(buf)
        due = frames_at(m, m._pdue)
        waits.append(due - (m.pos + 320))  # after the read's last sample was captured
        m._service(m._pdue)
    assert waits == [192, 128, 64, 0, 192, 128, 64, 0], waits  # 12, 8, 4, 0 ms
    m.deinit()
    # the PDM microphone: 32 kHz frames, so 8 ms buffers and 640-frame reads
    p = mic(20480, rate=32000, format=I2S.STEREO)
    p.irq(lambda i2s: None)
    pdm = bytearray(640 * 8)
    waits = []
    for _ in range(4):
        p.readinto(pdm)
        waits.append(frames_at(p, p._pdue) - (p.pos + 640))
        p._service(p._pdue)
    assert waits == [128, 0, 128, 0], waits
    p.deinit()
