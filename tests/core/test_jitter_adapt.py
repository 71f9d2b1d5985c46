# voip.jitter's adaptive target under CPython and the MicroPython unix port: it starts at
# min_ms, rises at once with the measured jitter and by a frame for each underrun a late
# packet caused (not for a sender's pause), comes down one frame per 2 s, sheds latency only
# in quiet frames when given a loud table, and with get()'s clock starts playout as soon as
# the first packet has waited target minus its own length. All driven by an invented clock.
from checks import is_micropython

from voip.jitter import AUDIO, JitterBuffer, g711_loud_table

RUNTIMES = ("cpython", "micropython")
MICROPYTHON_HEAPSIZE = "256K"

LOUD = bytes([0x80]) * 80  # mu-law full scale, 10 ms
QUIET = bytes([0xFE]) * 80  # mu-law -1


def buffer(**kw):
    kw.setdefault("frame_bytes", 80)
    kw.setdefault("frame_ms", 10)
    kw.setdefault("slots", 32)
    kw.setdefault("min_ms", 20)
    kw.setdefault("max_ms", 100)
    return JitterBuffer(**kw)


def packet(jb, n, arrival, payload=None, frames=2):
    data = (payload or bytes([n % 100 + 1]) * 80) * frames
    return jb.put(n & 0xFFFF, (n * 80 * frames) & 0xFFFF, data, arrival)


def test_the_target_starts_low_and_grows_by_a_frame_per_late_underrun():
    jb = buffer()
    out = bytearray(80)
    assert jb.target_ms == 20
    t = 0
    for n in range(10):  # a steady stream: 20 ms packets, two 10 ms gets each
        packet(jb, n, t)
        jb.get(out, t)
        jb.get(out, t + 10)
        t += 20
    assert jb.target_ms == 20 and jb.underruns == 0
    # the next packet is 45 ms late: the buffer runs dry, conceals, and the packet that ends
    # the gap was due at its start
    for _ in range(4):
        jb.get(out, t)
        t += 10
    assert jb.underruns == 1
    packet(jb, 10, t + 5)
    assert jb.late_underruns == 1
    assert jb.target_ms >= 30  # one frame more (and J rose too)


def test_a_senders_pause_is_not_a_late_underrun():
    jb = buffer()
    out = bytearray(80)
    for n in range(5):
        packet(jb, n, 20 * n)
        jb.get(out, 20 * n)
        jb.get(out, 20 * n + 10)
    for k in range(30):  # 300 ms of silence: the sender sent nothing
        jb.get(out, 100 + 10 * k)
    assert jb.underruns == 1
    # the next talkspurt: its timestamp moved on with the pause (a relay's early start may put
    # it up to half a frame before the wall clock)
    jb.put(5, (5 * 160 + 300 * 8 - 40) & 0xFFFF, bytes([7]) * 160, 400)
    assert jb.late_underruns == 0 and jb.target_ms == 20


def test_the_target_comes_down_one_frame_per_two_seconds():
    jb = buffer()
    out = bytearray(80)
    t = 0
    spread = [0, 45, 5, 40, 0, 30]  # a jittery start...
    for n in range(6):
        packet(jb, n, t + spread[n])
        t += 20
    high = 0
    for n in range(6, 600):  # ...then 12 s of a steady stream
        packet(jb, n, t + 45)
        jb.get(out, t)
        jb.get(out, t + 10)
        t += 20
        if n == 7:  # the last rise: the step from the spread to the steady delay
            high = jb.target_ms
            assert high > 40
        if n == 7 + 95:  # not yet 2 s: still where the spike left it
            assert jb.target_ms == high, (high, jb.target_ms)
        if n == 7 + 105:  # after 2 s: at most one frame down
            assert high - 10 <= jb.target_ms < high, (high, jb.target_ms)
    assert jb.target_ms == 20  # down to what J (now ~0) asks for, after 6 s or so


def test_latency_left_by_a_spike_is_shed_only_in_quiet_frames():
    def spike_then(payload, loud):
        jb = buffer(max_ms=60, loud=loud)
        out = bytearray(80)
        t = 0
        packet(jb, 0, t, payload)
        for n in range(1, 8):  # a burst: 140 ms of audio at once, well above target
            packet(jb, n, t + 1, payload)
        for n in range(8, 60):
            jb.get(out, t)
            jb.get(out, t + 10)
            packet(jb, n, t + 20, payload)
            t += 20
        return jb

    table = g711_loud_table("PCMU")
    assert spike_then(LOUD, table).trimmed == 0  # speech is never cut
    assert spike_then(QUIET, table).trimmed >= 2  # a pause is shortened
    assert spike_then(LOUD, None).trimmed >= 2  # without a table: any frame, as before


def test_with_a_clock_playout_starts_once_the_first_packet_has_waited_its_margin():
    jb = buffer(min_ms=32)  # one 20 ms packet + 12 ms for a speaker that asks early
    out = bytearray(80)
    packet(jb, 0, 1000)
    assert jb.get(out, 1004) != AUDIO  # 4 ms: not yet
    assert jb.get(out, 1011) != AUDIO
    assert jb.get(out, 1012) == AUDIO  # waited 12 ms: 20 + 12 = target
    # without the clock the target counts in whole frames: it waits for 40 ms of audio
    jb = buffer(min_ms=32)
    packet(jb, 0, 1000)
    assert [jb.get(out) == AUDIO for _ in range(3)] == [False, False, False]
    packet(jb, 1, 1020)
    assert jb.get(out) == AUDIO


def test_the_loud_table_marks_codes_beyond_the_level():
    for law, silence in (("PCMU", 0xFF), ("PCMA", 0xD5)):
        table = g711_loud_table(law, 256)
        assert len(table) == 256 and table[silence] == 0
        assert sum(table) > 200  # most codes are louder than -42 dBFS
    assert g711_loud_table("PCMU")[0x80] == 1 and g711_loud_table("PCMU")[0xFE] == 0


def test_adapting_allocates_nothing_under_micropython():
    if not is_micropython():
        return
    import gc

    jb = buffer(loud=g711_loud_table("PCMU"))
    out = bytearray(80)
    payload = LOUD * 2
    t = 0
    n = 0

    def step(late):
        nonlocal t, n
        jb.put(n & 0xFFFF, (n * 160) & 0xFFFF, payload, t + late)
        jb.get(out, t)
        jb.get(out, t + 10)
        n += 1
        t += 20

    for k in range(50):
        step(k % 5 * 9)
    gc.collect()
    gc.disable()
    before = gc.mem_alloc()
    for k in range(300):  # jitter, late underruns, a shrinking target, trims
        step((k * 37) % 70)
    used = gc.mem_alloc() - before
    gc.enable()
    assert used == 0, used
