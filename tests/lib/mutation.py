# tests/lib/mutation.py: deterministic byte mutations for the fuzz tests that run under both
# CPython and the MicroPython unix port. MIT licence.
#
# A small LCG instead of `random`: MicroPython's random differs from CPython's, and the point
# is that both runtimes (and a re-run after a failure) walk exactly the same sequence.


class Lcg:
    def __init__(self, seed):
        self.state = seed

    def below(self, n):
        self.state = (self.state * 1103515245 + 12345) & 0x7FFFFFFF
        return (self.state >> 8) % n


def mutate(rng, data, tokens, kinds=5, max_cut=8):
    """`data` with 1 to 3 random edits. Each edit is one of (the first `kinds` of):
    0 - one byte replaced by a random byte
    1 - one of `tokens` inserted (bytes a parser treats specially)
    2 - 1 to `max_cut` bytes deleted
    3 - the rest cut off (a truncated datagram)
    4 - the line at the position repeated (a duplicated header)
    Callers fix `kinds` and `max_cut` per test: they are part of each test's sequence."""
    for _ in range(1 + rng.below(3)):
        kind = rng.below(kinds)
        pos = rng.below(len(data) + 1)
        if kind == 0 and data:
            pos = min(pos, len(data) - 1)
            data = data[:pos] + bytes([rng.below(256)]) + data[pos + 1 :]
        elif kind == 1:
            data = data[:pos] + tokens[rng.below(len(tokens))] + data[pos:]
        elif kind == 2:
            data = data[:pos] + data[pos + 1 + rng.below(max_cut) :]
        elif kind == 3:
            data = data[:pos]
        elif kind == 4:
            end = data.find(b"\n", pos)
            if end >= 0:
                start = data.rfind(b"\n", 0, pos) + 1
                data = data[: end + 1] + data[start : end + 1] + data[end + 1 :]
    return data
