"""What a board folder says about flashing it: chip, native-code arch, flash, partitions.

Everything is read from the files MicroPython's build reads (mpconfigboard.cmake's IDF_TARGET,
sdkconfig.board's flash size, partitions.csv), so there is one place to change a board.
"""

import json
import os
import re

from . import BOARDS, FirmwareError

# Which mpy-cross -march produces native code (viper kernels) the chip runs.
CHIP_ARCH = {
    "esp32": "xtensawin",
    "esp32s2": "xtensawin",
    "esp32s3": "xtensawin",
    "esp32c2": "rv32imc",
    "esp32c3": "rv32imc",
    "esp32c5": "rv32imc",
    "esp32c6": "rv32imc",
    "esp32h2": "rv32imc",
    "esp32p4": "rv32imc",
}

# Where the second-stage bootloader, and so a MicroPython firmware.bin, starts in flash
# (esptool.targets.*.BOOTLOADER_FLASH_OFFSET; tests/host/test_firmware_boards.py checks).
BOOTLOADER_OFFSET = {
    "esp32": 0x1000,
    "esp32s2": 0x1000,
    "esp32s3": 0x0,
    "esp32c2": 0x0,
    "esp32c3": 0x0,
    "esp32c6": 0x0,
    "esp32h2": 0x0,
    "esp32c5": 0x2000,
    "esp32p4": 0x2000,
}

# esptool's speed when a board's USB serial bridge cannot take the usual 460800 baud: the
# M5Stack Atom's times out ("Timed out waiting for packet header") above 115200.
FLASH_BAUD = {"atom_echo": 115200}
DEFAULT_FLASH_BAUD = 460800

# The chip id an ESP-IDF image header carries (esp_image_header_t.chip_id).
IMAGE_CHIP_ID = {0: "esp32", 2: "esp32s2", 9: "esp32s3", 5: "esp32c3", 12: "esp32c2",
                 13: "esp32c6", 16: "esp32h2", 18: "esp32p4", 23: "esp32c5"}

# The MP_NATIVE_ARCH_* numbers in sys.implementation._mpy (bits 10 and up).
MPY_ARCH = {0: None, 1: "x86", 2: "x64", 3: "armv6", 4: "armv6m", 5: "armv7m", 6: "armv7em",
            7: "armv7emsp", 8: "armv7emdp", 9: "xtensa", 10: "xtensawin", 11: "rv32imc",
            12: "rv64imc"}
ARCHES = ("xtensawin", "rv32imc", "x64")

ROMFS_SUBTYPE = 0x8F
_APP_DESC_MAGIC = 0xABCD5432


def board_names(boards_dir=BOARDS):
    """Every board folder with a profile.json (the app's boards), sorted."""
    return sorted(
        n for n in os.listdir(boards_dir)
        if os.path.isfile(os.path.join(boards_dir, n, "profile.json"))
    )


def _size(text):
    text = text.strip()
    if not text:
        return None
    unit = 1
    if text[-1] in "kK":
        unit, text = 1024, text[:-1]
    elif text[-1] in "mM":
        unit, text = 1024 * 1024, text[:-1]
    return int(text, 0) * unit


def parse_partitions(path):
    """partitions.csv -> [{name, type, subtype, offset, size}] (ints where numeric)."""
    table = []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            fields = [x.strip() for x in line.split(",")]
            if len(fields) < 5:
                raise FirmwareError("%s:%d: expected name, type, subtype, offset, size" % (
                    path, number))
            subtype = fields[2]
            try:
                subtype = int(subtype, 0)
            except ValueError:
                pass
            table.append({"name": fields[0], "type": fields[1], "subtype": subtype,
                          "offset": _size(fields[3]), "size": _size(fields[4])})
    return table


def board_info(name, boards_dir=BOARDS):
    """What the tools need to know about boards/<name>: raises FirmwareError if unknown."""
    folder = os.path.join(boards_dir, name)
    profile_path = os.path.join(folder, "profile.json")
    if not name or "/" in name or not os.path.isfile(profile_path):
        raise FirmwareError("unknown board %r: boards are %s" % (
            name, ", ".join(board_names(boards_dir))))
    with open(profile_path) as f:
        profile = json.load(f)
    info = {"name": name, "dir": folder, "profile": profile, "chip": None, "arch": None,
            "flash_mb": None, "partitions": [], "romfs": None, "definition": False}
    if profile.get("platform") == "sim":
        info["arch"] = "x64"  # the MicroPython unix port on a 64-bit PC
        return info
    cmake = os.path.join(folder, "mpconfigboard.cmake")
    if not os.path.isfile(cmake):
        return info  # a profile without a board definition: stock MicroPython only
    info["definition"] = True
    with open(cmake) as f:
        m = re.search(r"set\(\s*IDF_TARGET\s+(\w+)\s*\)", f.read())
    if not m or m.group(1) not in CHIP_ARCH:
        raise FirmwareError("%s: no IDF_TARGET we know (%s)" % (cmake, ", ".join(CHIP_ARCH)))
    info["chip"] = m.group(1)
    info["arch"] = CHIP_ARCH[info["chip"]]
    sdkconfig = os.path.join(folder, "sdkconfig.board")
    if os.path.isfile(sdkconfig):
        with open(sdkconfig) as f:
            sizes = re.findall(r"^CONFIG_ESPTOOLPY_FLASHSIZE_(\d+)MB=y\s*$", f.read(), re.M)
        if sizes:
            info["flash_mb"] = int(sizes[-1])
    csv = os.path.join(folder, "partitions.csv")
    if os.path.isfile(csv):
        info["partitions"] = parse_partitions(csv)
        for p in info["partitions"]:
            if p["name"] == "romfs":
                info["romfs"] = p
    return info


def chip_of_board(name):
    info = board_info(name)
    if info["chip"] is None:
        raise FirmwareError("board %s has no ESP32 board definition (no chip to flash)" % name)
    return info["chip"]


def image_kind(data):
    """(kind, chip) of a firmware file's first bytes: kind is "bootloader" (a MicroPython
    firmware.bin: bootloader + partition table + app, written at the chip's bootloader
    offset), "merged" (an image that starts at flash address 0, bootloader at 0x1000) or
    "app" (an application image alone, micropython.bin)."""
    start = 0
    if data[:1] != b"\xe9" and len(data) > 0x1000 and data[:0x1000] == b"\xff" * 0x1000:
        start = 0x1000  # esptool merge-bin output for a chip whose bootloader is at 0x1000
    head = data[start:start + 36]
    if len(head) < 36 or head[0] != 0xE9:
        raise FirmwareError("not an ESP32 firmware image (no 0xE9 image header)")
    chip = IMAGE_CHIP_ID.get(int.from_bytes(head[12:14], "little"))
    if int.from_bytes(head[32:36], "little") == _APP_DESC_MAGIC:
        return "app", chip
    return ("merged" if start else "bootloader"), chip


def flash_offset(chip, data):
    """Where `data` (a firmware file's contents) goes in the flash of `chip`."""
    kind, image_chip = image_kind(data)
    if image_chip is not None and chip is not None and image_chip != chip:
        raise FirmwareError("this image is for %s, not %s: flashing it would not boot" % (
            image_chip, chip))
    chip = chip or image_chip
    if kind == "app":
        raise FirmwareError("this is an application image alone (micropython.bin): flash "
                            "firmware.bin from the same build, which has the bootloader and "
                            "partition table too")
    if kind == "merged":
        return chip, 0x0
    if chip not in BOOTLOADER_OFFSET:
        raise FirmwareError("unknown chip %r: pass --chip (%s)" % (
            chip, ", ".join(sorted(BOOTLOADER_OFFSET))))
    return chip, BOOTLOADER_OFFSET[chip]


def decode_mpy(value):
    """sys.implementation._mpy -> (version, sub-version, arch name or None)."""
    return value & 0xFF, (value >> 8) & 3, MPY_ARCH.get(value >> 10, "arch%d" % (value >> 10))
