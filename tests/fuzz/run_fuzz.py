"""`make fuzz`: the long, bounded fuzzing run.

    python tests/fuzz/run_fuzz.py [--seconds 60] [--targets sip,ua] [--examples 5000]
                                  [--mp-count 30000]

1. atheris (coverage-guided, libFuzzer): every target in atheris_fuzz.py for --seconds each,
   corpus kept in build/fuzz/corpus/<target> (it grows from run to run), crashing inputs
   written to build/fuzz/crashes/. Skipped with a note where atheris is not installed (it has
   wheels for CPython 3.11-3.13 on Linux x86_64; pyproject.toml pins it there).
2. hypothesis: the properties of test_fuzz_properties.py with --examples random examples each.
3. MicroPython: the mutation runs of test_micropython_mutation.py with --mp-count inputs.

Prints one line per target with its figures; exits 1 if anything crashed or failed.
"""

import argparse
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BUILD = os.path.join(ROOT, "build", "fuzz")
TARGETS = ("sip", "sdp", "rtp", "rtcp", "digest", "stream", "ua")


def have_atheris():
    try:
        import atheris  # noqa: F401
    except ImportError:
        return False
    return True


def run_atheris(target, seconds):
    corpus = os.path.join(BUILD, "corpus", target)
    crashes = os.path.join(BUILD, "crashes")
    os.makedirs(corpus, exist_ok=True)
    os.makedirs(crashes, exist_ok=True)
    before = set(os.listdir(crashes))
    argv = [sys.executable, os.path.join(HERE, "atheris_fuzz.py"), target,
            "-max_total_time=%d" % seconds, "-timeout=20", "-rss_limit_mb=2048",
            "-print_final_stats=1", "-artifact_prefix=%s/%s-" % (crashes, target), corpus]
    t0 = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 120,
                          cwd=ROOT)
    elapsed = time.monotonic() - t0
    runs = re.findall(r"Done (\d+) runs", proc.stderr)
    cov = re.findall(r"cov: (\d+)", proc.stderr)
    new = sorted(set(os.listdir(crashes)) - before)
    ok = proc.returncode == 0 and not new
    print("atheris %-7s %9s runs in %4.0f s, coverage %5s edges, corpus %4d inputs, %s"
          % (target, runs[-1] if runs else "?", elapsed, cov[-1] if cov else "?",
             len(os.listdir(corpus)),
             "no crash" if ok else "CRASH: %s" % (", ".join(new) or "exit %d" % proc.returncode)),
          flush=True)
    if not ok:
        print(proc.stderr[-4000:], flush=True)
    return ok


def run_pytest(path, env_name, value, label):
    env = dict(os.environ, **{env_name: str(value)})
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "pytest", path, "-q", "-s", "-p",
                           "no:cacheprovider"], capture_output=True, text=True, env=env,
                          cwd=ROOT)
    summary = proc.stdout.strip().splitlines()[-1:] or ["?"]
    print("%-15s %s (%d s)" % (label, summary[0], time.monotonic() - t0), flush=True)
    for line in proc.stdout.splitlines():
        if line.startswith("micropython "):
            print("    " + line.lstrip("."), flush=True)
    if proc.returncode != 0:
        print(proc.stdout[-6000:], flush=True)
    return proc.returncode == 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=60, help="atheris time per target")
    parser.add_argument("--targets", default=",".join(TARGETS))
    parser.add_argument("--examples", type=int, default=5000, help="hypothesis examples")
    parser.add_argument("--mp-count", type=int, default=30000, help="MicroPython mutations")
    args = parser.parse_args()
    ok = True
    if have_atheris():
        for target in args.targets.split(","):
            ok &= run_atheris(target.strip(), args.seconds)
    else:
        print("atheris not installed here: skipping the coverage-guided part "
              "(pip install atheris==3.0.0; CPython 3.11-3.13, Linux x86_64)", flush=True)
    ok &= run_pytest("tests/fuzz/test_fuzz_properties.py", "SIPMOTE_FUZZ_EXAMPLES",
                     args.examples, "hypothesis")
    ok &= run_pytest("tests/fuzz/test_micropython_mutation.py", "SIPMOTE_MP_MUTATIONS",
                     args.mp_count, "micropython")
    print("fuzz: %s" % ("no crash, every invariant held" if ok else "FAILURES above"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
