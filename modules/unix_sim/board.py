# unix_sim.board: the simulator board's `machine` stand-in. MIT licence.
#
# I2S follows the documented machine.I2S API and the ESP32 port's behaviour:
#   I2S(id, *, sck, ws, sd, mode, bits, format, rate, ibuf); init/deinit; readinto/write
#   blocking, or non-blocking once irq(handler) is set, the handler then being called through
#   the MicroPython scheduler with the I2S object when the buffer is filled/emptied; one
#   object per id (a new one deinitialises the old), and pins of two live objects may not
#   overlap (a half-duplex board must deinit one direction before opening the other).
# Behind it, "DMA" runs on the wall clock, with the DMA buffers the ESP32 port makes of ibuf
# (ports/esp32/machine_i2s.c): buffers of 256 I2S frames, ibuf // (256 * DMA frame bytes) of
# them but at least 2 (ESP-IDF needs two), where an RX DMA frame is 8 bytes (the port always
# reads 32-bit stereo) and a TX frame is the app's format. Audio moves one whole DMA buffer at
# a time, as ESP-IDF's i2s_channel_read/write do: the microphone's samples can be read once
# the buffer holding them is full (a 20 ms read at 16 kHz waits for the 16 ms buffer its last
# sample is in: 0-12 ms more), and at most that many buffers are kept before the oldest is
# dropped; the speaker's data goes into a buffer once the DMA has finished playing it, so a
# write returns when its last byte has found one (at 16 kHz, 20 ms writes then return 16, 16,
# 16 and 32 ms apart, with 20-32 ms queued ahead for 2 buffers: the time the app has to make
# the next write). The DMA plays a write's frames as it reaches them, so a write is queued in
# the speaker's timeline when it is made; the speaker plays at `rate` and writes a WAV file
# with silence wherever it ran dry, that is where a write came after everything before it had
# played (the data then resumes at the next DMA buffer). Both keep one timeline across
# deinit/init, as a real mic and speaker would.
#
# Non-blocking completions happen in dma_task(), an asyncio task the app starts on this board.
# Pin drives nothing; a button is pressed by setting its level (press()). NeoPixel records
# the colour. Wi-Fi does not exist here: the host's network is used as is.
import time

import micropython

from phone import _audio_viper as kernels

from . import _sim_viper as simk
from .wav import Reader, Writer

try:
    import asyncio
except ImportError:  # pragma: no cover
    asyncio = None


class _Clock:
    """Microseconds since start, never wrapping (ticks wrap; the sum does not)."""

    def __init__(self):
        self.last = time.ticks_us()
        self.origin = self.last  # ticks_us of elapsed 0 (the unix port's CLOCK_MONOTONIC)
        self.elapsed = 0

    def now(self):
        t = time.ticks_us()
        self.elapsed += time.ticks_diff(t, self.last)
        self.last = t
        return self.elapsed


clock = _Clock()


# --- the microphone and the speaker behind the I2S objects ----------------------------------


class MicSource:
    """16-bit mono samples at `rate` from a WAV file, a tone, or silence, on a wall timeline
    that starts when the microphone is first opened."""

    def __init__(self, path=None, tone_hz=0, amplitude=8000, rate=16000, loop=False):
        self.path, self.loop, self.rate = path, loop, rate
        self.reader = Reader(path) if path else None
        if self.reader is not None and self.reader.rate != rate:
            raise ValueError("mic WAV is %d Hz; this board's mic runs at %d Hz" % (
                self.reader.rate, rate))
        self.table = None
        if tone_hz:
            import math

            period = rate
            for d in range(min(rate, tone_hz), 0, -1):
                if rate % d == 0 and tone_hz % d == 0:
                    period = rate // d
                    break
            self.table = bytearray(2 * period)
            for i in range(period):
                v = int(amplitude * math.sin(2 * math.pi * tone_hz * i / rate)) & 0xFFFF
                self.table[2 * i], self.table[2 * i + 1] = v & 0xFF, v >> 8
            self.period, self.phase = period, 0
        self.epoch = None  # clock.now() when first opened
        self.position = 0  # samples delivered (or skipped) since the epoch
        self.ended = False
        self.scratch = bytearray(2048)

    def read(self, buf, n):
        """Fill buf with the next n samples."""
        if self.table is not None:
            self.phase = simk.tone_fill(buf, n, self.table, self.period, self.phase)
        elif self.reader is None:
            kernels.clear(buf, 2 * n)
        else:
            got = self.reader.readinto(buf, 2 * n)
            if got < 2 * n and self.loop:
                self.reader.close()
                self.reader = Reader(self.path)
                got += self.reader.readinto(memoryview(buf)[got:], 2 * n - got)
            if got < 2 * n:
                self.ended = True
                kernels.clear(memoryview(buf)[got:], 2 * n - got)
        self.position += n

    def skip_to(self, position):
        """The mic was not being read: the sound of that time is lost."""
        while self.position < position:
            n = min(position - self.position, len(self.scratch) // 2)
            self.read(self.scratch, n)


class SpeakerSink:
    """Writes what the speaker plays to a WAV file (or nowhere), silence included."""

    def __init__(self, path=None, rate=16000):
        self.writer = Writer(path, rate) if path else None
        self.rate = rate
        self.epoch = None
        self.frames = 0  # samples written since the epoch
        self.zeros = bytearray(640)
        self.scratch = None  # stereo -> mono for the WAV: allocated by a stereo speaker only
        self.underruns = 0

    def fill_to(self, frame):
        """Silence up to `frame` (the speaker ran dry until then)."""
        if frame > self.frames:
            self.underruns += 1
        while self.frames < frame:
            n = min(frame - self.frames, len(self.zeros) // 2)
            if self.writer is not None:
                self.writer.write(self.zeros, 2 * n)
            self.frames += n

    def play(self, buf, n, stereo):
        if self.writer is not None:
            if stereo:
                if self.scratch is None:
                    self.scratch = bytearray(4096)
                simk.copy_bytes(self.scratch, buf, 4 * n)
                kernels.stereo_to_mono16(self.scratch, n)
                self.writer.write(self.scratch, 2 * n)
            else:
                self.writer.write(buf, 2 * n)
        self.frames += n
        if self.writer is not None and self.frames % (self.rate * 2) < n:
            self.writer.flush()  # every 2 s: the file stays valid if the run is killed

    def close(self):
        if self.writer is not None:
            self.writer.close()
            self.writer = None


mic = MicSource()
speaker = SpeakerSink()
_pdm_state = bytearray(12)


def configure(mic_wav=None, speaker_wav=None, tone_hz=0, loop=False, mic_rate=16000,
              speaker_rate=16000):
    """Choose what the microphone hears and where the speaker's sound goes."""
    global mic, speaker
    speaker.close()
    mic = MicSource(mic_wav, tone_hz, rate=mic_rate, loop=loop)
    speaker = SpeakerSink(speaker_wav, speaker_rate)
    for i in range(3):
        _pdm_state[4 * i + 3] = 0x20  # integrators at 0, offset by 2**29


def shutdown():
    """Close the speaker WAV (patching its header)."""
    speaker.close()


def epochs_ticks_us():
    """(microphone, speaker) WAV starts as ticks_us (None if never opened): on the unix port
    that is CLOCK_MONOTONIC, the host's time.monotonic(), so a host can place the sound of
    both files on its own clock (tests/bench/bench_e2e.py does)."""
    return tuple(None if e is None else time.ticks_add(clock.origin, e)
                 for e in (mic.epoch, speaker.epoch))


# --- machine-like classes -----------------------------------------------------------------

_levels = {}  # pin id -> level set by the simulator (buttons)


def press(pin_id, level=0):
    _levels[pin_id] = level


def release(pin_id):
    _levels.pop(pin_id, None)


class Pin:
    IN = 1
    OUT = 3
    OPEN_DRAIN = 7
    PULL_UP = 1
    PULL_DOWN = 2

    def __init__(self, id, mode=-1, pull=-1, value=None):
        self.id = id
        self.init(mode, pull, value)

    def init(self, mode=-1, pull=-1, value=None):
        self.mode = mode
        self.pull = pull
        self._out = value if value is not None else 0

    def value(self, v=None):
        if v is not None:
            self._out = 1 if v else 0
            return None
        if self.id in _levels:
            return _levels[self.id]
        if self.mode == Pin.OUT:
            return self._out
        # an idle input reads high (pull-up, internal or on the board) unless pulled down
        return 0 if self.pull == Pin.PULL_DOWN else 1

    def on(self):
        self._out = 1

    def off(self):
        self._out = 0

    def __call__(self, v=None):
        return self.value(v)


class NeoPixel:
    def __init__(self, pin, n):
        self.pin, self.n = pin, n
        self.pixels = [(0, 0, 0)] * n
        self.shown = (0, 0, 0)

    def __setitem__(self, i, rgb):
        self.pixels[i] = rgb

    def __getitem__(self, i):
        return self.pixels[i]

    def write(self):
        self.shown = self.pixels[0]


_live = [None, None]  # the live I2S object of each id (a list: iterating allocates nothing)


DMA_BUFFER_FRAMES = 256  # DMA_BUF_LEN_IN_I2S_FRAMES in MicroPython's ESP32 port


def dma_buffers(mode, bits, format, ibuf):
    """How many DMA buffers of DMA_BUFFER_FRAMES the ESP32 port makes for this ibuf."""
    if mode == I2S.RX:
        frame = 8  # 32-bit stereo, whatever the app asked for
    else:
        frame = bits // 8 * (2 if format == I2S.STEREO else 1)
    return max(ibuf // (DMA_BUFFER_FRAMES * frame), 2)


class I2S:
    RX = 0
    TX = 1
    MONO = 0
    STEREO = 1

    def __init__(self, id, **kwargs):
        self.id = id
        self._handler = None
        self.active = False
        self.init(**kwargs)

    def init(self, *, sck, ws, sd, mck=None, mode, bits, format, rate, ibuf):
        if self.id not in (0, 1):
            raise ValueError("I2S(%s) doesn't exist" % self.id)
        if mode not in (I2S.RX, I2S.TX):
            raise ValueError("invalid mode")
        if bits not in (16, 32):
            raise ValueError("invalid bits")
        if format not in (I2S.MONO, I2S.STEREO):
            raise ValueError("invalid format")
        if rate <= 0:
            raise ValueError("invalid rate")
        if ibuf <= 0:
            raise ValueError("invalid ibuf")
        old = _live[self.id]
        if old is not None:
            old.deinit()
        self.pins = (sck.id, ws.id, sd.id)
        for other in _live:
            if other is not None:
                for p in self.pins:
                    if p in other.pins:
                        raise ValueError("pin %d is in use by I2S(%d)" % (p, other.id))
        self.mode, self.bits, self.format, self.rate = mode, bits, format, rate
        channels = 2 if format == I2S.STEREO else 1
        self.frame_bytes = bits // 8 * channels  # bytes per frame in the app's buffers
        # frames the DMA buffers hold (RX: 32-bit stereo frames; TX: the app's format)
        self.buffers = dma_buffers(mode, bits, format, ibuf)
        self.capacity = self.buffers * DMA_BUFFER_FRAMES
        self.pdm = mode == I2S.RX and bits == 32 and format == I2S.STEREO
        now = clock.now()
        if mode == I2S.RX:
            src = mic
            if src.epoch is None:
                src.epoch = now
            # where the source is now, in this device's frames
            self.t0 = src.epoch
            self.pos = self._frames_at(now)
            src.skip_to(self._source_samples(self.pos))
            self.grid = self.pos  # the DMA buffers start filling now
        else:
            sink = speaker
            if sink.epoch is None:
                sink.epoch = now
            self.t0 = sink.epoch
            self.pos = max(self._frames_at(now), sink.frames)  # frames queued through
            self.grid = self.pos  # the first DMA buffer plays from here
        self._pbuf = None
        self._pdue = 0
        self.overruns = 0
        self.active = True
        _live[self.id] = self

    def _frames_at(self, t_us):
        return (t_us - self.t0) * self.rate // 1000000

    def _time_of(self, frames):
        return self.t0 + (frames * 1000000 + self.rate - 1) // self.rate

    def _source_samples(self, frames):
        # a PDM stream of 32-bit stereo frames at 32 kHz carries 16 kHz PCM: 2 frames a sample
        return frames // 2 if self.pdm else frames

    def deinit(self):
        if self.active:
            self.active = False
            self._pbuf = None
            if _live[self.id] is self:
                _live[self.id] = None

    def irq(self, handler):
        self._handler = handler

    @staticmethod
    def shift(*, buf, bits, shift):
        if bits != 16:
            raise ValueError("sim supports 16-bit shift only")
        g = 256 << shift if shift >= 0 else 256 >> (-shift)
        kernels.ramp_gain16(buf, len(buf) // 2, g, g)

    # --- transfers ---------------------------------------------------------------------

    def _buffer_end(self, frame):
        """The end of the DMA buffer that holds `frame` (a frame position)."""
        k = (frame - self.grid) // DMA_BUFFER_FRAMES + 1
        return self.grid + k * DMA_BUFFER_FRAMES

    def _due(self, n):
        """When a transfer of n frames started now can complete."""
        if self.mode == I2S.RX:  # once the buffer holding its last frame is full
            return self._time_of(self._buffer_end(self.pos + n - 1))
        # TX: once the buffer its last frame goes into has been played (it is free again)
        return self._time_of(self._buffer_end(self.pos + n - 1) - self.capacity)

    def _complete(self, buf, n):
        now = clock.now()
        if self.mode == I2S.RX:
            captured = self._frames_at(now)
            if captured - self.pos > self.capacity + n:  # DMA overflow: oldest dropped
                self.overruns += 1
                self.pos = captured - self.capacity - n
                mic.skip_to(self._source_samples(self.pos))
            if self.pdm:
                half = n // 2
                mic.read(mic.scratch, half)
                simk.sigma_delta(mic.scratch, half, 128, buf, _pdm_state)
            else:
                mic.read(buf, n)
                if self.bits == 32:
                    kernels.pcm16_to_i2s32(buf, n)
        self.pos += n

    def _place(self, buf, n):
        """A write's data takes its place in the speaker's timeline when the write is made:
        the DMA plays each frame as it reaches it, so the head of a write is queued long
        before its tail has found a free buffer (when the write returns). The speaker ran dry
        if it had played everything before this write came; the data then goes into the
        next DMA buffer."""
        played = self._frames_at(clock.now())
        if played > speaker.frames:
            speaker.fill_to(self._buffer_end(played - 1))
        if self.pos < speaker.frames:
            self.pos = speaker.frames
        speaker.play(buf, n, self.format == I2S.STEREO)

    def _check(self, buf):
        if not self.active:
            raise OSError("I2S is deinitialised")
        n = len(buf) // self.frame_bytes
        if self.pdm and n % 2:
            raise ValueError("PDM reads need an even number of frames")
        if n * self.frame_bytes > 2048 * 16:
            raise ValueError("buffer larger than the simulator's scratch")
        return n

    def readinto(self, buf):
        if self.mode != I2S.RX:
            raise OSError("I2S not configured for read")
        return self._transfer(buf)

    def write(self, buf):
        if self.mode != I2S.TX:
            raise OSError("I2S not configured for write")
        return self._transfer(buf)

    def _transfer(self, buf):
        n = self._check(buf)
        if self.mode == I2S.TX:
            self._place(buf, n)
        due = self._due(n)
        if self._handler is not None:  # non-blocking: complete later, then call the handler
            self._pbuf, self._pn, self._pdue = buf, n, due
            return len(buf)
        wait = due - clock.now()
        if wait > 0:
            time.sleep_us(wait)
        self._complete(buf, n)
        return n * self.frame_bytes

    def _service(self, now):
        """Complete a due non-blocking transfer. Returns µs until the next one (or -1)."""
        if self._pbuf is None:
            return -1
        if now < self._pdue:
            return self._pdue - now
        buf, self._pbuf = self._pbuf, None
        self._complete(buf, self._pn)
        micropython.schedule(self._handler, self)
        return -1


async def dma_task():
    """Completes non-blocking transfers on time; the app runs this on the sim board."""
    while True:
        now = clock.now()
        wait = 5000
        for i in range(2):
            dev = _live[i]
            if dev is not None:
                w = dev._service(now)
                if 0 <= w < wait:
                    wait = w
        await asyncio.sleep_ms((wait + 999) // 1000 if wait > 0 else 0)
