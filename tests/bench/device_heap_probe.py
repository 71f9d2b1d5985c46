# device_heap_probe: where the phone's heap goes, by phase, with the code executing in place
# from a ROMFS image (as from a board's flash). Run by the MicroPython unix port:
#
#   micropython device_heap_probe.py IMAGE CONFIG BOARDS_DIR
#
# Prints "HEAP <phase> <bytes>" for each phase (live bytes after a full collection, the image
# excluded), then MicroPython's qstr_info() line (the qstr pool's bytes), then "HEAP-OK".
# tests/bench/bench_device.py reports these.
import gc
import sys

import micropython
import vfs

with open(sys.argv[1], "rb") as _f:
    _image = _f.read()
vfs.mount(vfs.VfsRom(memoryview(_image)), "/rom")
sys.path.insert(0, "/rom")
config_path, boards = sys.argv[2], sys.argv[3]


def live():
    gc.collect()
    gc.collect()
    return gc.mem_alloc()


_last = [live()]


def phase(name):
    now = live()
    print("HEAP %s %d" % (name, now - _last[0]))
    _last[0] = now


import asyncio  # noqa: E402, F401 - frozen in the firmware, but its objects are in the heap

phase("asyncio")
from phone import app  # noqa: E402 - log, config, board, led, wifi with it

phase("import phone.app")
from unix_sim import board as _sim_board  # noqa: E402, F401 - the simulator's machine

phase("import unix_sim.board (simulator only)")
from phone import sip_task  # noqa: E402 - voip.sip: message, transaction, call, ua...

phase("import phone.sip_task (voip.sip)")
from voip import sdp_session  # noqa: E402, F401 - voip.sdp, voip.sdp_description

phase("import voip.sdp_session")
from phone import media  # noqa: E402, F401 - audio, g711, rtp, jitter, dtmf and kernels

phase("import phone.media")
phone = app.build(config_path, (boards,), {})
phase("Phone with its MediaSession (the call buffers)")
task = sip_task.SipTask(phone, phone.cfg, "127.0.0.1")
phone.sip = task
phase("SipTask and UserAgent")
phone.place_call("sip:echo@127.0.0.1:5999")
phase("a call being placed (SDP, INVITE transaction)")
from voip.sip import digest  # noqa: E402, F401 - only once a 401/407 arrives

phase("import voip.sip.digest (at the first challenge)")
task.close()
print("HEAP total %d" % (live() - len(_image)))
micropython.qstr_info()
print("HEAP-OK")
