"""Coverage-guided fuzzing of the shared core with atheris (libFuzzer for CPython).

    python tests/fuzz/atheris_fuzz.py TARGET [libFuzzer options] [CORPUS_DIR ...]
    e.g. python tests/fuzz/atheris_fuzz.py sip -max_total_time=60 build/fuzz/sip

TARGET is one of sip, sdp, rtp, rtcp, digest, stream, ua: the same checks the hypothesis
properties run (fuzz_targets.py, fuzz_ua.py), here driven by libFuzzer's coverage feedback over
the instrumented voip modules. A broken invariant or an unexpected exception is a crash:
libFuzzer writes the input to crash-<sha1> in the working directory and exits non-zero.
An empty corpus directory is seeded with the real messages in fuzz_seeds.py. `make fuzz`
(tests/fuzz/run_fuzz.py) runs every target for a bounded time.
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
for path in (HERE, os.path.join(ROOT, "modules"), os.path.join(ROOT, "tests", "lib")):
    if path not in sys.path:
        sys.path.insert(0, path)

import atheris  # noqa: E402

with atheris.instrument_imports(include=["voip"]):
    import fuzz_targets  # noqa: E402
    import fuzz_ua  # noqa: E402
    from fuzz_seeds import (  # noqa: E402
        DIGEST_SEEDS,
        RTCP_SEEDS,
        RTP_SEEDS,
        SDP_SEEDS,
        SIP_SEEDS,
    )


def _ua(data):
    fuzz_ua.check_ua(fuzz_ua.split_datagrams(data))


def _ua_seeds():
    # each seed datagram framed as split_datagrams expects: a head byte then the bytes
    out = []
    for seed in SIP_SEEDS:
        out.append(b"\x00" + seed)
    short = [s[: len(s) // 4 * 4] for s in SIP_SEEDS if len(s) < 508]
    out.append(b"".join(bytes([len(s) // 4 << 1]) + s for s in short))
    return out


TARGETS = {
    "sip": (fuzz_targets.check_sip, SIP_SEEDS),
    "sdp": (fuzz_targets.check_sdp, SDP_SEEDS),
    "rtp": (fuzz_targets.check_rtp, RTP_SEEDS),
    "rtcp": (fuzz_targets.check_rtcp, RTCP_SEEDS),
    "digest": (fuzz_targets.check_digest, DIGEST_SEEDS),
    "stream": (fuzz_targets.check_media_stream, [bytes(range(256))]),
    "ua": (_ua, _ua_seeds()),
}


def seed_corpus(directory, seeds):
    os.makedirs(directory, exist_ok=True)
    if os.listdir(directory):
        return
    for i, seed in enumerate(seeds):
        with open(os.path.join(directory, "seed-%02d" % i), "wb") as f:
            f.write(seed)


def main(argv):
    if len(argv) < 2 or argv[1] not in TARGETS:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    check, seeds = TARGETS[argv[1]]
    libfuzzer_args = [argv[0]] + argv[2:]
    for arg in argv[2:]:
        if not arg.startswith("-") and not os.path.isfile(arg):
            seed_corpus(arg, seeds)

    def one_input(data):
        check(data)

    atheris.Setup(libfuzzer_args, one_input)
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
