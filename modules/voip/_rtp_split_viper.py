# voip._rtp_split_viper: the header scan behind voip.rtp_split (MicroPython only).
# MIT licence. No bounds checks here: voip.rtp_split checks start, stop and at first.
import micropython


@micropython.viper
def find_header(buf, start: int, stop: int, at: int) -> int:
    """The first k in [start, stop) where buf[k] has RTP version 2 and buf[k+8:k+12] (an
    SSRC) equals buf[at+8:at+12]; -1 if there is none. Reads buf[k+11] for every k."""
    b = ptr8(buf)
    s0 = b[at + 8]
    s1 = b[at + 9]
    s2 = b[at + 10]
    s3 = b[at + 11]
    k = start
    while k < stop:
        if b[k + 8] == s0:
            if (b[k] & 0xC0) == 0x80 and b[k + 9] == s1 and b[k + 10] == s2 and b[k + 11] == s3:
                return k
        k += 1
    return -1
