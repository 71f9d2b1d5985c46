# unix_sim._sim_viper: per-sample loops of the simulator board (unix port only). MIT licence.
#
# The simulated microphone turns WAV samples into what an I2S peripheral would shift in:
# left-justified 32-bit words (phone._audio_viper.pcm16_to_i2s32) or, for a PDM microphone,
# a sigma-delta bit stream. These run on the host, but they are still viper so the
# simulator's own cost does not hide the firmware's in the CPU-per-frame figure.
import micropython


@micropython.viper
def sigma_delta(pcm: ptr16, n: int, osr: int, out: ptr8, state: ptr32):
    """n int16 samples -> n * osr PDM bits (a second-order modulator, unity gain).

    Bits are packed MSB first into little-endian 32-bit words, as the I2S peripheral stores
    them (the k-th byte in time goes to out[k ^ 3]). state holds the two integrators and the
    last output, offset by 2**29 so they store as non-negative words."""
    i1 = int(state[0]) - 0x20000000
    i2 = int(state[1]) - 0x20000000
    y = int(state[2]) - 0x20000000
    k = 0
    byte = 0
    nbits = 0
    for i in range(n):
        x = int(pcm[i])
        x = (x ^ 0x8000) - 0x8000
        for _ in range(osr):
            i1 += x - y
            i2 += i1 - y
            if i2 >= 0:
                y = 32768
                byte = (byte << 1) | 1
            else:
                y = -32768
                byte = byte << 1
            nbits += 1
            if nbits == 8:
                out[k ^ 3] = byte & 0xFF
                k += 1
                byte = 0
                nbits = 0
    state[0] = i1 + 0x20000000
    state[1] = i2 + 0x20000000
    state[2] = y + 0x20000000


@micropython.viper
def tone_fill(dst: ptr16, n: int, table: ptr16, period: int, pos: int) -> int:
    """Copy n samples of a periodic table (one period long) into dst from phase `pos`;
    return the next phase."""
    for i in range(n):
        dst[i] = table[pos]
        pos += 1
        if pos >= period:
            pos = 0
    return pos


@micropython.viper
def copy_bytes(dst: ptr8, src: ptr8, n: int):
    for i in range(n):
        dst[i] = src[i]
