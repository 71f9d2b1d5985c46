"""16-bit mono WAV files as numpy arrays: the simulator's microphone and speaker files, the
demo's caller, and the tests' tones and recordings all go through these two functions."""

import wave


def read_wav(path):
    """(rate, float64 samples) of a 16-bit PCM WAV; several channels are averaged to one."""
    import numpy as np

    with wave.open(path, "rb") as w:
        rate, width, channels = w.getframerate(), w.getsampwidth(), w.getnchannels()
        raw = w.readframes(w.getnframes())
    if width != 2:
        raise ValueError("%s: expected 16-bit PCM" % path)
    x = np.frombuffer(raw, dtype="<i2").astype(np.float64)
    return rate, x.reshape(-1, channels).mean(axis=1) if channels > 1 else x


def write_wav(path, samples, rate):
    """`samples` (any numbers; rounded and clipped to 16 bits) as a mono 16-bit WAV."""
    import numpy as np

    pcm = np.clip(np.round(np.asarray(samples)), -32768, 32767).astype("<i2")
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
