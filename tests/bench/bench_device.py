"""Device firmware figures on the MicroPython unix port (the ESP32's numbers will differ; these
compare like with like in one run):

- audio path per 20 ms frame: the viper kernels (mic I2S 32-bit -> 8 kHz, PDM mic -> 8 kHz,
  8 kHz -> speaker) against the plain-Python reference that computes the same integers;
- a steady-state call (phone.media on the unix_sim board, loopback far end): heap bytes
  allocated per frame with the collector off, and CPU time per 20 ms of call (both
  directions: convert, G.711, RTP, jitter buffer) as a share of the 20 ms it covers;
- a 60-second call of the whole firmware (`sipmote sim --mpy`, code cross-compiled with
  mpy-cross -march=x64) to a SIPp UAS that echoes RTP: peak live GC heap (collected every
  second) before and during the call, and the firmware's own CPU per frame; then 20 s with the same
  .mpy files in a ROMFS image (executed in place, as from flash), its image subtracted;
- where that heap goes, by phase (tests/bench/device_heap_probe.py from the x64 ROMFS image):
  each group of imports, the call's buffers, the SIP stack, a call being placed, the qstr pool.
The unix port is 64-bit: its objects are about twice an ESP32's, so heap figures are an upper
bound for the board.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
for path in (os.path.join(ROOT, "host_tools"), os.path.join(ROOT, "tests", "lib")):
    if path not in sys.path:
        sys.path.insert(0, path)

CALL_SECONDS = 60
ROMFS_SECONDS = 20


def _micropython():
    from sipmote.sim import micropython_binary

    return micropython_binary()


def probe(report):
    binary = _micropython()
    if binary is None:
        report("device", "micropython unix port", "skipped", "", "not installed")
        return
    env = dict(os.environ, MICROPYPATH=os.path.join(ROOT, "modules") + os.pathsep + ".frozen")
    out = subprocess.run(
        [binary, "-X", "heapsize=512K", os.path.join(HERE, "device_probe.py"),
         os.path.join(ROOT, "boards")],
        env=env, capture_output=True, text=True, timeout=120, check=True,
    ).stdout.splitlines()[-1]
    r = json.loads(out)
    for name, key in (("mic I2S 32-bit 16 kHz -> 8 kHz", "uplink_i2s"),
                      ("mic PDM 2.048 MHz -> 8 kHz", "uplink_pdm"),
                      ("8 kHz -> speaker 16 kHz", "downlink")):
        us, py = r[key + "_us"], r[key + "_python_us"]
        report("device", "audio %s per 20 ms frame (viper)" % name, us, "us",
               "%.0fx faster than the Python reference (%.0f us)" % (py / us, py))
    report("device", "bytes allocated per frame, steady-state call",
           r["call_bytes_allocated"] / max(1, r["call_frames"]), "B/frame",
           "%d bytes over %d I2S frames, collector off" % (r["call_bytes_allocated"],
                                                           r["call_frames"]))
    per_20ms = 2 * r["call_cpu_us_per_frame"]
    report("device", "CPU per 20 ms of call (mic + speaker frame)", per_20ms, "us",
           "%.2f%% of real time" % (per_20ms / 200))


def sim_call(report, seconds, romfs, work):
    from simdevice import device_config, free_udp_port

    from sipmote.sim import SimDevice

    sipp = shutil.which("sipp")
    uas_port = free_udp_port()
    cfg_path = os.path.join(work, "device-%s.json" % ("romfs" if romfs else "mpy"))
    device_config(cfg_path, call={"target": "sip:echo@127.0.0.1:%d" % uas_port})
    uas = subprocess.Popen(
        [sipp, "-sn", "uas", "-i", "127.0.0.1", "-p", str(uas_port), "-mp",
         str(free_udp_port(True)), "-rtp_echo", "-m", "1", "-nostdin",
         "-timeout", "%ds" % (seconds + 30)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    dev = SimDevice(cfg_path, tone=440, control_port=free_udp_port(), heapsize="1M",
                    mpy=not romfs, romfs=romfs, heap_stats=True)
    try:
        dev.start()
        dev.wait_for("sip: on", 20)
        time.sleep(2.5)  # idle samples of the live heap first
        dev.control("call")
        dev.wait_for("call: connected", 10)
        time.sleep(seconds)
        dev.control("hangup")
        time.sleep(0.5)
        dev.stop()
    finally:
        dev.close()
        if uas.poll() is None:
            uas.terminate()
            uas.wait(5)
    return dev.result


def whole_call(report):
    if _micropython() is None or shutil.which("sipp") is None:
        report("device", "60 s simulated call", "skipped", "", "needs micropython and sipp")
        return
    work = tempfile.mkdtemp(prefix="bench-device-")
    try:
        r = sim_call(report, CALL_SECONDS, False, work)
        media = r["calls"][0]["media"]
        note = "code as .mpy (x64) in the heap"
        report("device", "60 s call: peak live heap", r["live_heap_in_call"], "B", note)
        report("device", "60 s call: live heap before the call (SIP up, idle)",
               r["live_heap_before_call"], "B", note + "; media code loads at the call")
        report("device", "60 s call: peak heap with garbage", r["peak_heap"], "B",
               "GC heap 1M: collections are rare")
        report("device", "60 s call: firmware CPU per I2S frame", media["cpu_us_per_frame"],
               "us", "max %d us; %d packets sent, %d received, %d lost" % (
                   media["cpu_max_us"], media["tx_packets"], media["rx_packets"],
                   media["lost"]))
        r = sim_call(report, ROMFS_SECONDS, True, work)
        image = r["code_image_bytes"]
        report("device", "20 s call from ROMFS: peak live heap minus image",
               r["live_heap_in_call"] - image, "B",
               "code executed in place; image %d B subtracted" % image)
        report("device", "20 s call from ROMFS: live heap before the call minus image",
               r["live_heap_before_call"] - image, "B", "")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def heap_by_phase(report):
    """Live heap of each phase of the phone's start and first call, from the ROMFS image."""
    import re

    from simdevice import device_config

    from sipmote.firmware.bundle import SIM_ARCH, build_bundle, build_romfs

    binary = _micropython()
    if binary is None:
        report("device", "heap by phase", "skipped", "", "needs micropython")
        return
    work = tempfile.mkdtemp(prefix="bench-heap-")
    try:
        image = build_romfs(build_bundle(SIM_ARCH, os.path.join(work, "bundle"), quiet=True),
                            os.path.join(work, "x64.romfs"), quiet=True)
        cfg = os.path.join(work, "device.json")
        device_config(cfg, call={"target": "sip:echo@127.0.0.1:5999"})
        out = subprocess.run(
            [binary, "-X", "heapsize=1M", os.path.join(HERE, "device_heap_probe.py"), image,
             cfg, os.path.join(ROOT, "boards")],
            env=dict(os.environ, MICROPYPATH=".frozen"), cwd=work, capture_output=True,
            text=True, timeout=120, check=True).stdout
    finally:
        shutil.rmtree(work, ignore_errors=True)
    note = "x64 ROMFS, code in place; 64-bit: about twice an ESP32's"
    for name, value in re.findall(r"^HEAP (.+) (\d+)$", out, re.M):
        report("device", "heap: " + name, int(value), "B", note)
    m = re.search(r"n_qstr=(\d+), n_str_data_bytes=\d+, n_total_bytes=(\d+)", out)
    if m:
        report("device", "heap: qstr pool (part of the imports above)", int(m.group(2)), "B",
               "%s qstrs; in flash when frozen into the firmware" % m.group(1))


def run(report):
    probe(report)
    heap_by_phase(report)
    whole_call(report)


if __name__ == "__main__":

    def show(section, name, value, unit, note=""):
        print("%-8s %-52s %12s %-6s %s" % (section, name, value, unit, note))

    run(show)
