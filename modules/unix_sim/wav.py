# unix_sim.wav: 16-bit PCM mono WAV files read and written in place, for the simulator's
# microphone and speaker. MIT licence.
#
# Only what the simulator needs: RIFF/WAVE with a PCM (format 1) or WAVE_FORMAT_EXTENSIBLE
# fmt chunk, 16 bits, one channel. Reads go into caller buffers; the writer patches the RIFF
# and data sizes on flush() and close(), so a file stays playable even if the run is stopped.
import struct


class WavError(ValueError):
    pass


def _u32(b, i):
    return b[i] | (b[i + 1] << 8) | (b[i + 2] << 16) | (b[i + 3] << 24)


def _u16(b, i):
    return b[i] | (b[i + 1] << 8)


class Reader:
    """Sequential reader of a 16-bit mono WAV: readinto(buf) fills whole samples."""

    def __init__(self, path):
        self.path = path
        self.f = open(path, "rb")  # noqa: SIM115 - kept open for sequential reads
        try:
            self._parse_header()
        except Exception:
            self.f.close()
            raise

    def _parse_header(self):
        f = self.f
        head = f.read(12)
        if len(head) != 12 or head[0:4] != b"RIFF" or head[8:12] != b"WAVE":
            raise WavError("%s: not a RIFF/WAVE file" % self.path)
        self.rate = None
        for _ in range(64):  # chunks before "data" are few; bounded against garbage
            ch = f.read(8)
            if len(ch) != 8:
                break
            cid, size = ch[0:4], _u32(ch, 4)
            if cid == b"fmt ":
                fmt = f.read(size + (size & 1))
                if len(fmt) < 16:
                    raise WavError("%s: short fmt chunk" % self.path)
                tag, channels, rate = _u16(fmt, 0), _u16(fmt, 2), _u32(fmt, 4)
                bits = _u16(fmt, 14)
                if tag not in (1, 0xFFFE) or bits != 16 or channels != 1:
                    raise WavError(
                        "%s: need 16-bit PCM mono (format %d, %d channels, %d bits)"
                        % (self.path, tag, channels, bits)
                    )
                self.rate = rate
            elif cid == b"data":
                if self.rate is None:
                    raise WavError("%s: data before fmt" % self.path)
                # 0 or 0xFFFFFFFF: a streamed file whose size was never patched
                self.remaining = size if 0 < size < 0xFFFFFFFF else 0x7FFFFFFF
                return
            else:
                f.seek(size + (size & 1), 1)
        raise WavError("%s: no data chunk" % self.path)

    def readinto(self, buf, nbytes):
        """Read up to nbytes (even) into buf; return the number of bytes read (0 at end)."""
        if nbytes > self.remaining:
            nbytes = self.remaining & ~1
        if nbytes <= 0:
            return 0
        n = self.f.readinto(buf, nbytes)
        n = (n or 0) & ~1
        self.remaining -= n
        return n

    def close(self):
        self.f.close()


class Writer:
    """16-bit mono WAV writer at `rate`. write(buf, nbytes) appends samples."""

    def __init__(self, path, rate):
        self.path = path
        self.rate = rate
        self.f = open(path, "wb")  # noqa: SIM115 - kept open while the call runs
        self.nbytes = 0
        self.f.write(self._header())

    def _header(self):
        return b"RIFF" + struct.pack("<I", 36 + self.nbytes) + b"WAVE" + b"fmt " + struct.pack(
            "<IHHIIHH", 16, 1, 1, self.rate, self.rate * 2, 2, 16
        ) + b"data" + struct.pack("<I", self.nbytes)

    def write(self, buf, nbytes):
        self.f.write(buf if nbytes == len(buf) else memoryview(buf)[:nbytes])
        self.nbytes += nbytes

    def flush(self):
        """Patch the sizes so the file is a valid WAV as it stands; keep writing after."""
        f = self.f
        f.seek(0)
        f.write(self._header())
        f.seek(0, 2)
        f.flush()

    def close(self):
        if self.f is not None:
            self.flush()
            self.f.close()
            self.f = None
