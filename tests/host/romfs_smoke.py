# romfs_smoke: the device smoke test, run by the MicroPython unix port with nothing on its
# import path but a ROMFS image. MIT licence.
#
#   micropython romfs_smoke.py IMAGE CONFIG FLAG
#
# Mounts IMAGE at /rom as a board's firmware does (vfs.VfsRom over the image's bytes: the
# .mpy run in place from that buffer), imports every module in it and checks each came from
# /rom, runs the viper G.711 kernels against the module's scalar G.191 reference, then boots
# the phone on the unix_sim board through sipmote_start (as main.py does) for a moment.
# Prints one "SMOKE ..." line per check and "SMOKE-OK" at the end.
import sys

import vfs

image, config, flag = sys.argv[1], sys.argv[2], sys.argv[3]
with open(image, "rb") as f:
    vfs.mount(vfs.VfsRom(memoryview(f.read())), "/rom")
sys.path.insert(0, "/rom")
import os  # noqa: E402

# 1. every module in the image imports, from the image
names = []


def walk(path, package):
    for entry in os.ilistdir(path):
        name, kind = entry[0], entry[1]
        if kind == 0x4000:
            if name != "boards":
                walk(path + "/" + name, package + name + ".")
        elif name.endswith(".mpy"):
            names.append(package + name[:-4])


walk("/rom", "")
for name in names:
    module = __import__(name)
    for part in name.split(".")[1:]:
        module = getattr(module, part)
    if not module.__file__.startswith("/rom/"):
        raise AssertionError("%s came from %s" % (name, module.__file__))
print("SMOKE imported %d modules from /rom" % len(names))

# 2. G.711 with the viper kernels from the image, against the scalar reference
from voip import g711  # noqa: E402

assert g711.IMPLEMENTATION == "viper", g711.IMPLEMENTATION
assert g711._viper.__file__ == "/rom/voip/_g711_viper.mpy", g711._viper.__file__
samples = [0, 1, -1, -2, -4, 5, -5, 32767, -32768, 1000, -1000, 31, -33, 8159, -8160]
while len(samples) < 160:
    samples.append((len(samples) * 409 - 32768) % 65536 - 32768)
pcm = bytearray(320)
for i, s in enumerate(samples):
    pcm[2 * i] = s & 0xFF
    pcm[2 * i + 1] = (s >> 8) & 0xFF
for law, encode, decode, to_code, to_linear in (
    ("ulaw", g711.ulaw_encode, g711.ulaw_decode, g711.linear_to_ulaw, g711.ulaw_to_linear),
    ("alaw", g711.alaw_encode, g711.alaw_decode, g711.linear_to_alaw, g711.alaw_to_linear),
):
    codes = bytearray(160)
    assert encode(pcm, codes) == 160
    back = bytearray(320)
    assert decode(codes, back) == 160
    for i, s in enumerate(samples):
        assert codes[i] == to_code(s), (law, s, codes[i], to_code(s))
        value = back[2 * i] | back[2 * i + 1] << 8
        value = value - 65536 if value > 32767 else value
        assert value == to_linear(codes[i]), (law, s, value)
    print("SMOKE %s: 160 samples encoded and decoded by the viper kernels" % law)
assert g711.linear_to_ulaw(0) == 0xFF and g711.linear_to_ulaw(-1) == 0x7F  # G.191

# 3. boot the phone as main.py does, on the unix_sim board, and stop it after a moment
import asyncio  # noqa: E402

import sipmote_start  # noqa: E402

from phone import app  # noqa: E402

assert sipmote_start.__file__ == "/rom/sipmote_start.mpy"


async def stop_soon():
    await asyncio.sleep_ms(400)
    app.current.finish(0, "smoke test over")


code = sipmote_start.run(config, flag, False, {"extra_tasks": [stop_soon()]})
assert code == 0, code
assert app.current.board.name == "unix_sim"
print("SMOKE booted the phone on unix_sim and stopped it: %s" % app.current.exit_reason)

# 4. /noautostart keeps it from starting
with open(flag, "w") as f:
    f.write("off\n")
assert sipmote_start.run(config, flag, False) is None
print("SMOKE-OK")
