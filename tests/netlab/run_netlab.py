"""`make netlab`: calls across impaired links, with the figures per profile (needs root).

    python tests/netlab/run_netlab.py [--seconds 20] [--profiles loss5,jitter30]
                                      [--peers sipp,device] [--json out.json]

For each impairment profile of tests/lib/netlab.py (the clean link first, as the reference)
and each peer (SIPp calling the relay's echo agent; the simulated device calling the relay's
OpenAI backend on the fake Realtime server), one call of --seconds across the link. Printed
per call: registration and setup time (ms, from the device side's capture), then for the
uplink (device -> relay) and the downlink: network loss, duplicates and reordering, RFC 3550
jitter, one-way delay, the longest gap and the frames a jitter buffer concealed, its mean
depth, the MOS estimate (voip.rtcp.estimate_mos); the relay's own counts of caller frames it
dropped as out of order (duplicates, later than its reorder window waited) and of those its
reorder window put back in order; barge-ins; and for the device its own jitter buffer's
counters. Exits 1 if a call failed.
"""

import argparse
import json
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
for path in ("tests/lib", "tests/host", "modules", "host_tools"):
    if os.path.join(ROOT, path) not in sys.path:
        sys.path.insert(0, os.path.join(ROOT, path))

import netlab  # noqa: E402

PROFILES = ["clean", "loss5", "jitter30", "dup1", "outage2s", "uplink_loss10"]
HEAD = ("%-8s %-14s %5s %6s | %-40s | %-40s | %6s %5s %9s" % (
    "peer", "profile", "reg", "setup", "uplink: loss dup reord jit delay gap conc jb MOS",
    "downlink: loss dup reord jit delay gap conc jb MOS", "dropped", "barge", "reordered"))


def direction(fig):
    if not fig:
        return "-"
    return "%4.1f%% %2d %3d %4.1f %4.0f %4d %3d %3.0f %4.2f" % (
        fig["loss_pct"], fig["duplicates"], fig["reordered"], fig["jitter_ms"],
        fig["delay_ms"] or 0, fig["longest_gap_ms"], fig["frames_concealed"],
        fig["jb_depth_mean_ms"], fig["mos"])


def line(peer, result):
    sip = result.get("sip") or {}
    relay = result.get("relay") or {}
    dropped = relay.get("out_of_order")
    reordered = relay.get("reordered")
    return "%-8s %-14s %5s %6s | %-40s | %-40s | %6s %5s %9s%s" % (
        peer, result["profile"], _ms(sip.get("register_ms")), _ms(sip.get("setup_ms")),
        direction(result.get("uplink")), direction(result.get("downlink")),
        "-" if dropped is None else dropped, relay.get("barge_in_events", "-"),
        "-" if reordered is None else reordered, "" if result.get("ok") else "  FAILED")


def _ms(v):
    return "-" if v is None else "%.0f" % v


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--profiles", default=",".join(PROFILES))
    parser.add_argument("--peers", default="sipp,device")
    parser.add_argument("--json", help="write every result here")
    args = parser.parse_args()
    why = netlab.unavailable()
    if why:
        print("netlab: skipped: %s" % why)
        return 0
    import netlab_calls
    import netlab_device

    results = []
    ok = True
    print("netlab: impairment by %s; columns: ms, %%, counts, ms, ms, ms, frames, ms, MOS"
          % ("netem" if _has_netem() else "the userspace router (no netem in this kernel)"))
    print(HEAD, flush=True)
    work = tempfile.mkdtemp(prefix="netlab-")
    for peer in args.peers.split(","):
        for profile in args.profiles.split(","):
            t0 = time.monotonic()
            with netlab.NetLab() as lab:
                where = os.path.join(work, "%s-%s" % (peer, profile))
                if peer == "sipp":
                    result = netlab_calls.sipp_call(lab, where, profile, seconds=args.seconds)
                else:
                    result = netlab_device.device_call(lab, where, profile,
                                                       seconds=args.seconds)
            result["peer"] = peer
            result["wall_s"] = round(time.monotonic() - t0, 1)
            results.append(result)
            print(line(peer, result), flush=True)
            if peer == "device" and result.get("device"):
                d = result["device"]
                print("%-8s %-14s device jitter buffer: lost %s late %s concealed %s "
                      "underruns %s jitter %s ms depth %s ms" % (
                          "", "", d.get("lost"), d.get("late"), d.get("concealed"),
                          d.get("underruns"), d.get("jitter_ms"), d.get("buffer_ms")))
            if not result.get("ok"):
                ok = False
                print(result.get("log", "")[-2000:])
    for profile in args.profiles.split(","):
        print("%-14s %s" % (profile, netlab.PROFILE_TEXT.get(profile, "")))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1, default=str)
    print("netlab: %s" % ("every call survived" if ok else "FAILED calls above"))
    return 0 if ok else 1


def _has_netem():
    with netlab.NetLab() as lab:
        return lab.mode == "netem"


if __name__ == "__main__":
    sys.exit(main())
