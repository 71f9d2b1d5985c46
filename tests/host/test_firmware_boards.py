# The board definitions hold together (partition tables, flash sizes, cmake), firmware
# images go to the right flash offset for their chip, and `make firmware` without MicroPython
# or ESP-IDF stops with what to install.
import os
import re
import shutil
import subprocess
import sys

import pytest

from sipmote.firmware import BOARDS, ROOT, FirmwareError
from sipmote.firmware.boards import (
    BOOTLOADER_OFFSET,
    IMAGE_CHIP_ID,
    board_info,
    board_names,
    decode_mpy,
    flash_offset,
    image_kind,
)
from sipmote.firmware.build import check, make_command

ESP32_BOARDS = ["atom_echo", "esp32_devkit", "esp32s3_devkitc"]


def test_the_three_boards_have_definitions():
    for name in ESP32_BOARDS:
        assert board_info(name)["definition"], name
    assert board_info("unix_sim")["arch"] == "x64"
    assert set(ESP32_BOARDS) <= set(board_names())


@pytest.mark.parametrize("board, chip, flash_mb", [
    ("atom_echo", "esp32", 4),  # ESP32-PICO-D4: 4 MB embedded flash
    ("esp32_devkit", "esp32", 4),
    ("esp32s3_devkitc", "esp32s3", 8),  # ESP32-S3-WROOM-1 N8 / N8R2
])
def test_chip_and_flash_size(board, chip, flash_mb):
    info = board_info(board)
    assert (info["chip"], info["flash_mb"]) == (chip, flash_mb)
    assert info["arch"] == "xtensawin"


@pytest.mark.parametrize("board", ESP32_BOARDS)
def test_partition_table_fits_and_aligns(board):
    info = board_info(board)
    table = info["partitions"]
    end = 0x9000  # bootloader and the partition table itself come first
    for p in table:
        assert p["offset"] >= end, ("overlap", p)
        assert p["offset"] % 0x1000 == 0 and p["size"] % 0x1000 == 0, p
        if p["type"] == "app":
            assert p["offset"] % 0x10000 == 0, ("app partitions start on 64 KiB", p)
            assert p["size"] >= 0x1D0000, ("room for MicroPython + the frozen app", p)
        end = p["offset"] + p["size"]
    assert end <= info["flash_mb"] * 1024 * 1024
    names = [p["name"] for p in table]
    assert {"nvs", "phy_init", "romfs", "vfs"} <= set(names)
    romfs = info["romfs"]
    assert romfs["type"] == "data" and romfs["subtype"] == 0x8F
    assert romfs["offset"] % 0x10000 == 0 and romfs["size"] % 0x10000 == 0  # mmap pages
    if info["flash_mb"] >= 8:
        assert {"ota_0", "ota_1", "otadata"} <= set(names)
        sizes = {p["name"]: p["size"] for p in table}
        assert sizes["ota_0"] == sizes["ota_1"]


def board_cmake(folder):
    """The board's mpconfigboard.cmake with the fragments it includes (boards/common.cmake)
    in place of their include() lines."""
    with open(os.path.join(folder, "mpconfigboard.cmake")) as f:
        text = f.read()

    def fragment(m):
        with open(os.path.join(folder, m.group(1))) as f:
            return f.read()

    return re.sub(r"include\(\$\{MICROPY_BOARD_DIR\}/([^)\s]+)\)", fragment, text)


@pytest.mark.parametrize("board", ESP32_BOARDS)
def test_board_definition_files(board):
    folder = os.path.join(BOARDS, board)
    cmake = board_cmake(folder)
    assert not re.search(r"^\s*include\(", cmake, re.M)  # every include expanded above
    assert "${MICROPY_BOARD_DIR}/sdkconfig.board" in cmake
    assert "set(MICROPY_FROZEN_MANIFEST ${MICROPY_BOARD_DIR}/manifest.py)" in cmake
    assert re.search(r"list\(APPEND MICROPY_DEF_BOARD\s+MICROPY_VFS_ROM=1\s*\)", cmake)
    assert '${MICROPY_BOARD_DIR}/partitions.csv' in cmake
    assert "sdkconfig.ble" not in cmake  # no Bluetooth, as mpconfigboard.h says
    with open(os.path.join(folder, "mpconfigboard.h")) as f:
        header = f.read()
    assert re.search(r'#define MICROPY_HW_BOARD_NAME\s+"sipmote ', header)
    assert "MICROPY_HW_MCU_NAME" in header
    assert re.search(r"#define MICROPY_PY_BLUETOOTH\s+\(0\)", header)
    with open(os.path.join(folder, "sdkconfig.board")) as f:
        sdk = f.read()
    assert "CONFIG_PARTITION_TABLE_CUSTOM=y" in sdk


@pytest.mark.parametrize("board", ESP32_BOARDS)
def test_board_cmake_as_cmake_reads_it(board, tmp_path):
    """cmake itself runs the board file (and boards/common.cmake) as the esp32 port includes
    it: the board's sdkconfig fragments, then the generated partition-table one last."""
    cmake = shutil.which("cmake")
    if cmake is None:
        pytest.skip("cmake not installed")
    folder = os.path.join(BOARDS, board)
    script = tmp_path / "eval.cmake"
    script.write_text(
        "include(${MICROPY_BOARD_DIR}/mpconfigboard.cmake)\n"
        'message("${IDF_TARGET}|${SDKCONFIG_DEFAULTS}|${MICROPY_FROZEN_MANIFEST}|'
        '${MICROPY_DEF_BOARD}")\n')
    out = subprocess.run(
        [cmake, "-DMICROPY_BOARD_DIR=" + folder, "-DCMAKE_BINARY_DIR=" + str(tmp_path),
         "-DSDKCONFIG_IDF_VERSION_SPECIFIC=boards/sdkconfig.idf", "-P", str(script)],
        capture_output=True, text=True, timeout=60, check=True, cwd=tmp_path)
    target, defaults, manifest, defs = out.stderr.strip().split("|")
    assert target == board_info(board)["chip"]
    defaults = defaults.split(";")
    assert defaults[:2] == ["boards/sdkconfig.base", "boards/sdkconfig.idf"]
    assert defaults[-2:] == [os.path.join(folder, "sdkconfig.board"),
                             str(tmp_path / "sdkconfig.sipmote_partitions")]
    assert (tmp_path / "sdkconfig.sipmote_partitions").read_text() == (
        'CONFIG_PARTITION_TABLE_CUSTOM=y\nCONFIG_PARTITION_TABLE_CUSTOM_FILENAME="%s"\n'
        % os.path.join(folder, "partitions.csv"))
    assert manifest == os.path.join(folder, "manifest.py")
    assert defs == "MICROPY_VFS_ROM=1"


def test_bootloader_offsets_are_esptools():
    from esptool.targets import CHIP_DEFS

    for chip, offset in BOOTLOADER_OFFSET.items():
        assert offset == CHIP_DEFS[chip].BOOTLOADER_FLASH_OFFSET, chip
    for chip_id, chip in IMAGE_CHIP_ID.items():
        assert chip_id == CHIP_DEFS[chip].IMAGE_CHIP_ID, chip
    assert BOOTLOADER_OFFSET["esp32"] == 0x1000 and BOOTLOADER_OFFSET["esp32s3"] == 0x0
    assert BOOTLOADER_OFFSET["esp32c3"] == 0x0 and BOOTLOADER_OFFSET["esp32c6"] == 0x0


def esp_image(chip_id, app=False):
    """The first bytes of an ESP-IDF image: 24-byte header (magic 0xE9, chip id at 12), a
    segment header, then the app descriptor's magic if it is an application image."""
    head = bytearray(64)
    head[0] = 0xE9
    head[1] = 3
    head[12:14] = chip_id.to_bytes(2, "little")
    if app:
        head[32:36] = (0xABCD5432).to_bytes(4, "little")
    return bytes(head)


def test_firmware_bin_goes_to_the_bootloader_offset():
    assert flash_offset("esp32", esp_image(0)) == ("esp32", 0x1000)
    assert flash_offset(None, esp_image(9)) == ("esp32s3", 0x0)
    assert flash_offset("esp32c3", esp_image(5)) == ("esp32c3", 0x0)
    merged = b"\xff" * 0x1000 + esp_image(0)
    assert image_kind(merged) == ("merged", "esp32")
    assert flash_offset("esp32", merged) == ("esp32", 0x0)


def test_wrong_images_are_refused():
    with pytest.raises(FirmwareError, match="for esp32s3, not esp32"):
        flash_offset("esp32", esp_image(9))
    with pytest.raises(FirmwareError, match="application image alone"):
        flash_offset("esp32", esp_image(0, app=True))
    with pytest.raises(FirmwareError, match="not an ESP32 firmware image"):
        flash_offset("esp32", b"PK\x03\x04" + bytes(60))


def test_decode_mpy():
    # sys.implementation._mpy of the unix port here: 6.3, x64
    assert decode_mpy(2822) == (6, 3, "x64")
    assert decode_mpy(6 | 3 << 8 | 10 << 10) == (6, 3, "xtensawin")
    assert decode_mpy(6 | 3 << 8 | 11 << 10) == (6, 3, "rv32imc")


def test_make_firmware_without_micropython_or_idf_says_what_to_install(tmp_path):
    with pytest.raises(FirmwareError) as e:
        check("atom_echo", None, env={"PATH": os.environ.get("PATH", "")})
    text = str(e.value)
    assert "MICROPY_DIR is not set" in text and "IDF_PATH is not set" in text
    assert "git clone https://github.com/micropython/micropython" in text
    assert "make firmware BOARD=atom_echo MICROPY_DIR=~/micropython" in text
    (tmp_path / "ports" / "esp32").mkdir(parents=True)
    (tmp_path / "ports" / "esp32" / "Makefile").write_text("")
    with pytest.raises(FirmwareError, match="mpy-cross is not built"):
        check("atom_echo", str(tmp_path), env={"IDF_PATH": str(tmp_path)})


def test_make_firmware_exits_non_zero_with_the_message():
    env = {k: v for k, v in os.environ.items() if k not in ("MICROPY_DIR", "IDF_PATH")}
    r = subprocess.run([sys.executable, "-m", "sipmote.firmware", "firmware", "--board",
                        "esp32s3_devkitc"], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 2
    assert "make firmware needs a MicroPython source tree and ESP-IDF" in r.stderr


def test_make_firmware_command_is_micropythons_out_of_tree_build(tmp_path):
    info = board_info("esp32s3_devkitc")
    cmd = make_command(str(tmp_path), info, str(tmp_path / "out"))
    assert cmd == ["make", "-C", str(tmp_path / "ports" / "esp32"),
                   "BOARD_DIR=" + os.path.join(BOARDS, "esp32s3_devkitc"),
                   "BUILD=" + str(tmp_path / "out")]


def test_makefile_targets_call_the_tools():
    r = subprocess.run(["make", "-n", "-C", ROOT, "firmware", "bundle", "romfs", "deploy",
                        "flash", "BOARD=atom_echo", "ARCH=rv32imc", "PORT=/dev/ttyUSB0",
                        "FIRMWARE=fw.bin"], capture_output=True, text=True, timeout=60)
    out = r.stdout
    assert r.returncode == 0, r.stderr
    assert "-m sipmote.firmware firmware --board atom_echo" in out
    assert "-m sipmote.firmware bundle --arch rv32imc" in out
    assert "-m sipmote.firmware romfs --board atom_echo" in out
    assert "device deploy --port /dev/ttyUSB0 --board atom_echo" in out
    assert "device flash --port /dev/ttyUSB0 --firmware fw.bin" in out
