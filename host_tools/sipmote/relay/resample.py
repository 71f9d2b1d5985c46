"""Streaming conversion between 8 kHz G.711 and 24 kHz PCM16 for backends that need PCM.

Only used when a backend's native format is ``pcm16_24k``: the OpenAI backend takes G.711
directly and nothing here runs for it. Each direction of a call owns one ``soxr.ResampleStream``
so the filter state carries across 20 ms chunks (no clicks at chunk boundaries; resampling each
chunk on its own would restart the filter every 20 ms).

soxr's medium quality ("MQ") is the default: its pass band covers the whole G.711 band and it
holds back at most ~40 ms of audio, half what "HQ" holds (soxr emits its output in blocks, so
this is the latency a PCM backend pays per direction; measured by the tests). ``flush()`` drains
what the filter still holds at the end of an agent item; ``reset()`` forgets it on barge-in.
"""

import numpy as np
import soxr

from . import g711_tables

PCM_RATE = 24000
G711_RATE = 8000


class StreamResampler:
    """int16 mono in -> int16 mono out, across any chunking, with state kept between chunks."""

    def __init__(self, in_rate, out_rate, quality="MQ"):
        self.in_rate = in_rate
        self.out_rate = out_rate
        self.quality = quality
        self._stream = soxr.ResampleStream(in_rate, out_rate, 1, dtype="float32", quality=quality)

    def process(self, samples):
        """Feed int16 samples (numpy array); returns the int16 samples ready so far."""
        x = samples.astype(np.float32) * (1.0 / 32768.0)
        return self._to_int16(self._stream.resample_chunk(x))

    def flush(self):
        """End of the stream: the samples the filter still holds. The stream can then go on."""
        out = self._to_int16(self._stream.resample_chunk(np.zeros(0, np.float32), last=True))
        self._stream.clear()
        return out

    def reset(self):
        """Drop whatever the filter holds (barge-in: that audio must never play)."""
        self._stream.clear()

    @staticmethod
    def _to_int16(y):
        return np.clip(np.rint(y * 32768.0), -32768, 32767).astype(np.int16)


class G711ToPcm:
    """Caller direction: G.711 payloads -> 24 kHz little-endian PCM16 bytes."""

    def __init__(self, codec, quality="MQ"):
        self.codec = codec
        self._resampler = StreamResampler(G711_RATE, PCM_RATE, quality)

    def convert(self, payload):
        pcm = self._resampler.process(g711_tables.decode(self.codec, payload))
        return pcm.astype("<i2").tobytes()


class PcmToG711:
    """Agent direction: 24 kHz PCM16 bytes (any chunking, odd byte counts too) -> G.711 bytes."""

    def __init__(self, codec, quality="MQ"):
        self.codec = codec
        self._resampler = StreamResampler(PCM_RATE, G711_RATE, quality)
        self._odd = b""  # a byte left over when a chunk split a sample

    def convert(self, pcm_bytes):
        data = self._odd + bytes(pcm_bytes)
        cut = len(data) & ~1
        self._odd = data[cut:]
        samples = np.frombuffer(data[:cut], dtype="<i2")
        return g711_tables.encode(self.codec, self._resampler.process(samples))

    def flush(self):
        self._odd = b""
        return g711_tables.encode(self.codec, self._resampler.flush())

    def reset(self):
        self._odd = b""
        self._resampler.reset()
