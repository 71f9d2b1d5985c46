# tests/fuzz/mp_mutation.py: a mutation fuzzing run on the MicroPython unix port, holding the
# code under test to a small working heap. MIT licence.
#
#   micropython -X heapsize=1M mp_mutation.py TARGET COUNT SEED BUDGET_KB [MAX_TRANSACTIONS]
#
# TARGET "ua": COUNT mutated datagrams (real requests and responses, a few bytes changed) into
# one voip.sip.ua.UserAgent, some from a stranger, with timers ticking; "media": COUNT mutated
# SDP, RTP, RTCP and digest inputs through the same checks as the CPython fuzzers.
#
# Why a budget instead of a bare -X heapsize: on the ESP32 the firmware is frozen (bytecode in
# flash), but the unix port loads it into the GC heap (~115 KB for the UA on this 64-bit port).
# So the run imports everything first, then fills the heap with ballast until only BUDGET_KB is
# free: the UA's own objects, every datagram and every answer must fit in what is left.
#
# Memory: the UA is brought idle (every timer fired) after a warm-up and again at the end; free
# memory idle-to-idle must not shrink (nothing accumulates), and the lowest free memory seen
# mid-run (sampled after a collection) says how much of the budget the work took. The last
# line printed is
#   MP-RESULT {"target": ..., "count": ..., "idle_free_start": ..., "idle_free_end": ..., ...}
import gc
import json
import sys

from fuzz_seeds import DIGEST_SEEDS, RTCP_SEEDS, RTP_SEEDS, SDP_SEEDS, SIP_SEEDS
from mutation import Lcg, mutate

TOKENS = [b'"', b"<", b">", b",", b";", b":", b"%", b"\r\n", b"\r\n ", b" ", b"\x00", b"\xff",
          b"=", b"@", b"tag=x", b"SIP/2.0", b"\r\n\r\n", b"CSeq: 9 BYE\r\n", b"z9hG4bK",
          b"To: <sip:ua@127.0.0.1>;tag=u1\r\n", b"Content-Length: 99\r\n", b"9" * 12,
          b"INVITE", b"ACK", b"CANCEL", b"\x80", b"m=audio ", b"a=rtpmap:"]


def free_after_collect():
    gc.collect()
    return gc.mem_free()


def make_room(budget):
    """Ballast: leave only `budget` bytes of the heap free (see the header)."""
    free = free_after_collect()
    if free <= budget:
        return None, free
    return bytearray(free - budget - 256), free  # 256: the bytearray's own header and slack


def run_ua(count, seed, budget, max_transactions=32):
    import fuzz_ua

    ballast, before = make_room(budget)
    feeder = fuzz_ua.UaFeeder(fuzz_ua.new_ua(max_transactions))
    rng = Lcg(seed)
    lowest = free_after_collect()
    idle_start = None
    warm = min(300, count // 4)
    for i in range(count):
        data = mutate(rng, SIP_SEEDS[rng.below(len(SIP_SEEDS))], TOKENS, max_cut=16)
        stranger = rng.below(8) == 0
        feeder.feed(data, fuzz_ua.STRANGER if stranger else fuzz_ua.PEER)
        if i % 16 == 15:
            feeder.tick(700)
        if i % 16 == 0:
            free = free_after_collect()
            if free < lowest:
                lowest = free
        if i == warm:
            feeder.settle()  # idle: every transaction, call and retransmission done
            idle_start = free_after_collect()
    feeder.settle()
    idle_end = free_after_collect()
    options_ok = feeder.answers_options()
    ua = feeder.ua
    return {
        "target": "ua", "count": count, "budget": budget, "max_transactions": max_transactions,
        "heap_free_before_ballast": before,
        "ballast": len(ballast) if ballast is not None else 0,
        "idle_free_start": idle_start, "idle_free_end": idle_end, "lowest_free": lowest,
        "options_ok": options_ok, "sent": feeder.sent, "events": feeder.events,
        "out_of_memory": feeder.out_of_memory,
        "stats": ua.stats, "transactions_left": len(ua.layer), "calls_left": len(ua._calls),
    }


def run_media(count, seed, budget):
    import fuzz_targets

    ballast, before = make_room(budget)
    rng = Lcg(seed)
    checks = [(fuzz_targets.check_sdp, SDP_SEEDS), (fuzz_targets.check_rtp, RTP_SEEDS),
              (fuzz_targets.check_rtcp, RTCP_SEEDS), (fuzz_targets.check_digest, DIGEST_SEEDS),
              (fuzz_targets.check_sip, SIP_SEEDS)]
    accepted = [0] * len(checks)
    lowest = free_after_collect()
    idle_start = None
    for i in range(count):
        k = rng.below(len(checks))
        check, seeds = checks[k]
        if check(mutate(rng, seeds[rng.below(len(seeds))], TOKENS, max_cut=16)):
            accepted[k] += 1
        if i % 16 == 0:
            free = free_after_collect()
            if free < lowest:
                lowest = free
        if i == min(300, count // 4):
            idle_start = free_after_collect()
    idle_end = free_after_collect()
    return {
        "target": "media", "count": count, "budget": budget, "heap_free_before_ballast": before,
        "ballast": len(ballast) if ballast is not None else 0,
        "idle_free_start": idle_start, "idle_free_end": idle_end, "lowest_free": lowest,
        "accepted": {"sdp": accepted[0], "rtp": accepted[1], "rtcp": accepted[2],
                     "digest": accepted[3], "sip": accepted[4]},
    }


def main(argv):
    target, count, seed, budget_kb = argv[1], int(argv[2]), int(argv[3]), int(argv[4])
    if target == "ua":
        result = run_ua(count, seed, budget_kb * 1024, int(argv[5]) if len(argv) > 5 else 32)
    else:
        result = run_media(count, seed, budget_kb * 1024)
    print("MP-RESULT " + json.dumps(result))


main(sys.argv)
