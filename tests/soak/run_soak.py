"""`make soak`: hundreds of sequential calls, each side's holdings flat from first to last.

    python tests/soak/run_soak.py [--device-calls 300] [--relay-calls 300] [--warmup 140]

1. device -> relay -> fake AI (soak.device_soak): the firmware on the MicroPython unix port
   calls the relay (digest admission, OpenAI backend) whose fake Realtime server echoes the
   audio; hang-ups alternate between the device and the relay. Flat means: after every call
   no call, media, RTP port, asyncio task or socket is left on either side (the device's
   sockets and the relay process' fds are the same number after every call); and from the
   checkpoint after the warm-up to the last one (each taken once every SIP transaction has
   expired) the device's live heap grows by at most 4 KiB and the relay's traced memory by
   at most 64 KiB, with no call, media session, backend or WebSocket client object alive.
   The warm-up (140 calls) is longer than the relay's nonce-count table (128 entries), which
   fills by design.
2. SIPp -> `sipmote relay` (soak.relay_soak): digest calls with RTP in batches of 20 against
   the relay in its own process: no failed call, and after every batch no call, no RTP port,
   and the same number of open fds and sockets as after the warm-up; RSS (after the SIP
   transactions expired) grows by at most 4 MiB from the warm-up to the end.

Prints the figures as it goes; exits 1 if anything is not flat.
"""

import argparse
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
for path in ("tests/soak", "tests/lib", "tests/security", "tests/host", "modules",
             "host_tools"):
    if os.path.join(ROOT, path) not in sys.path:
        sys.path.insert(0, os.path.join(ROOT, path))

import soak  # noqa: E402

DEVICE_HEAP_SLACK = 4096
RELAY_TRACED_SLACK = 64 * 1024
RELAY_RSS_SLACK_KIB = 4096


def check_device(result, problems):
    samples = result["samples"]
    system = result["system"]
    if system.device_exit != 0:
        problems.append("device exited %s: %s" % (system.device_exit, system.device_result))
    if not all(s["carried"] for s in samples):
        problems.append("calls without audio: %s" % [s["call"] for s in samples
                                                      if not s["carried"]])
    for key in ("device_sockets", "relay_fds"):
        values = {s[key] for s in samples}
        if len(values) != 1:
            problems.append("%s not flat: %s" % (key, sorted(values)))
    if any(s["rtp_ports"] or s["tasks"] for s in samples):
        problems.append("RTP ports or tasks left after a call")
    (first_n, first), (last_n, last) = result["checkpoints"][0], result["checkpoints"][-1]
    heap = last["device_heap"] - first["device_heap"]
    traced = last["relay_traced"] - first["relay_traced"]
    print("device soak: %d calls; from call %d to %d: device live heap %+d B, relay traced "
          "memory %+d B, RSS %+d KiB, fds %d -> %d; device sockets %s, relay fds %s after "
          "every call" % (len(samples), first_n, last_n, heap, traced,
                          last["rss_kib"] - first["rss_kib"], first["fds"], last["fds"],
                          sorted({s["device_sockets"] for s in samples}),
                          sorted({s["relay_fds"] for s in samples})))
    if heap > DEVICE_HEAP_SLACK:
        problems.append("device live heap grew %d B" % heap)
    if traced > RELAY_TRACED_SLACK:
        problems.append("relay traced memory grew %d B" % traced)
    if last["relay_objects"] != first["relay_objects"] or last["relay_objects"]["Call"]:
        problems.append("relay objects alive: %s -> %s" % (first["relay_objects"],
                                                           last["relay_objects"]))


def check_relay(result, problems, warmup):
    batches = result["batches"]
    if result["failed"]:
        problems.append("SIPp: %d failed calls" % result["failed"])
    base = dict(batches[0][1])
    for done, fig in batches:
        if fig["calls"] or fig["rtp_ports"]:
            problems.append("after %d calls: %d calls, %d RTP ports held" % (
                done, fig["calls"], fig["rtp_ports"]))
        if (fig["fds"], fig["sockets"]) != (base["fds"], base["sockets"]):
            problems.append("after %d calls: fds %d sockets %d (after warm-up %d, %d)" % (
                done, fig["fds"], fig["sockets"], base["fds"], base["sockets"]))
    growth = batches[-1][1]["rss_kib"] - base["rss_kib"]
    print("relay soak: %d calls; RSS %+d KiB from call %d to %d; fds %d, sockets %d "
          "throughout" % (batches[-1][0], growth, batches[0][0], batches[-1][0], base["fds"],
                          base["sockets"]))
    if growth > RELAY_RSS_SLACK_KIB:
        problems.append("relay RSS grew %d KiB" % growth)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device-calls", type=int, default=300)
    parser.add_argument("--relay-calls", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=140)
    parser.add_argument("--checkpoint", type=int, default=80)
    args = parser.parse_args()
    problems = []
    work = tempfile.mkdtemp(prefix="soak-")
    if args.device_calls:
        result = soak.device_soak(os.path.join(work, "device"), calls=args.device_calls,
                                  warmup=min(args.warmup, args.device_calls),
                                  checkpoint=args.checkpoint)
        check_device(result, problems)
    if args.relay_calls:
        warm = min(args.warmup, args.relay_calls)
        result = soak.relay_soak(os.path.join(work, "relay"), calls=args.relay_calls,
                                 warmup=warm, quiet_s=34)
        check_relay(result, problems, warm)
    for p in problems:
        print("NOT FLAT: " + p)
    print("soak: %s" % ("flat from the first call to the last" if not problems else
                        "%d problem(s)" % len(problems)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
