# The x64 bundle as a ROMFS image, mounted with vfs.VfsRom on the unix port, runs the device
# smoke test (tests/host/romfs_smoke.py): imports resolve from /rom, the viper G.711 kernels
# from the image match the G.191 reference, the phone boots on unix_sim through sipmote_start.
# The ESP32 images are built the same way and must fit their boards' romfs partitions.
import json
import os
import socket
import subprocess
import sys

import pytest

from sipmote.firmware import FirmwareError
from sipmote.firmware.boards import board_info
from sipmote.firmware.bundle import build_bundle, build_romfs, romfs_for_board

HERE = os.path.dirname(os.path.abspath(__file__))


def micropython():
    here = os.path.join(os.path.dirname(sys.executable), "micropython")
    return here if os.path.exists(here) else "micropython"


def free_udp_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.fixture(scope="module")
def x64_image(tmp_path_factory):
    out = tmp_path_factory.mktemp("romfs")
    bundle = build_bundle("x64", str(out / "bundle"), quiet=True)
    return build_romfs(bundle, str(out / "x64.romfs"), quiet=True)


def test_romfs_image_runs_the_device_smoke_test(x64_image, tmp_path):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({
        "board": "unix_sim",
        "sip": {"user": "smoke", "local_ip": "127.0.0.1", "local_port": free_udp_port()},
        "audio": {"rtp_port": free_udp_port() & ~1},
    }))
    env = dict(os.environ, MICROPYPATH=".frozen")  # nothing but the image (and built-ins)
    r = subprocess.run(
        [micropython(), "-X", "heapsize=2M", os.path.join(HERE, "romfs_smoke.py"), x64_image,
         str(config), str(tmp_path / "noautostart")],
        cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=120,
    )
    out = r.stdout + r.stderr
    assert r.returncode == 0 and "SMOKE-OK" in out, out
    assert "SMOKE ulaw" in out and "SMOKE alaw" in out
    assert "SMOKE booted the phone on unix_sim" in out
    assert "not starting the phone: %s exists" % (tmp_path / "noautostart") in out


def test_romfs_holds_modules_at_its_root(x64_image):
    from mpremote.romfs import VfsRomWriter

    with open(x64_image, "rb") as f:
        data = f.read()
    assert data.startswith(VfsRomWriter.ROMFS_HEADER)
    for name in (b"voip", b"phone", b"sipmote_start.mpy", b"boards", b"MANIFEST.json",
                 b"_g711_viper.mpy", b"profile.json"):
        assert name in data, name


_LIST_IMAGE = """
import sys, vfs, os
vfs.mount(vfs.VfsRom(memoryview(open(sys.argv[1], "rb").read())), "/rom")
def walk(p):
    for e in os.ilistdir(p):
        if e[1] == 0x4000:
            walk(p + "/" + e[0])
        else:
            print(p[5:] + "/" + e[0] if p != "/rom" else e[0])
walk("/rom")
"""


def image_files(image, tmp_path):
    """The file paths inside a ROMFS image, as the unix port's VfsRom lists them."""
    script = tmp_path / "list_image.py"
    script.write_text(_LIST_IMAGE)
    r = subprocess.run([micropython(), str(script), image], capture_output=True, text=True,
                       timeout=60, env=dict(os.environ, MICROPYPATH=".frozen"))
    assert r.returncode == 0, r.stdout + r.stderr
    return set(r.stdout.split())


def test_x64_image_carries_the_simulator_board(x64_image, tmp_path):
    files = image_files(x64_image, tmp_path)
    assert {"unix_sim/board.mpy", "unix_sim/main.mpy", "unix_sim/control.mpy",
            "unix_sim/wav.mpy", "unix_sim/_sim_viper.mpy", "phone/board.mpy",
            "boards/unix_sim/profile.json"} <= files


@pytest.mark.parametrize("board", ["atom_echo", "esp32_devkit", "esp32s3_devkitc"])
def test_board_romfs_image_fits_its_partition(board, tmp_path):
    image = romfs_for_board(board, str(tmp_path), quiet=True)
    size = os.path.getsize(image)
    part = board_info(board)["romfs"]["size"]
    # room to grow: the app must stay well inside the partition
    assert size < part * 3 // 4, (size, part)
    # and nothing of the simulator: its modules and profiles stay on the unix port
    files = image_files(image, tmp_path)
    assert "phone/app.mpy" in files and "boards/%s/profile.json" % board in files
    assert not [f for f in files if "sim" in f], sorted(files)


def test_too_big_for_the_partition_is_refused(tmp_path):
    bundle = build_bundle("xtensawin", str(tmp_path / "b"), quiet=True)
    with pytest.raises(FirmwareError, match="romfs partition 4096"):
        build_romfs(bundle, str(tmp_path / "x.romfs"), limit=4096, quiet=True)
