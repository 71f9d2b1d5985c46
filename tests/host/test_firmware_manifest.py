# Every manifest.py evaluates and every path it names exists; package.json (mpremote mip)
# lists every device module and nothing that is not there, and installs on a "board".
import glob
import json
import os
import subprocess
import sys

import pytest

from sipmote.firmware import BOARDS, FIRMWARE, MODULES, ROOT, FirmwareError
from sipmote.firmware.boards import board_names
from sipmote.firmware.bundle import package_json_text
from sipmote.firmware.manifests import evaluate

HERE = os.path.dirname(os.path.abspath(__file__))

BOARD_MANIFESTS = sorted(glob.glob(os.path.join(BOARDS, "*", "manifest.py")))


def device_py_files():
    out = set()
    for package in ("voip", "phone"):
        for dirpath, dirnames, names in os.walk(os.path.join(MODULES, package)):
            dirnames[:] = [d for d in dirnames if d != "__pycache__"]
            out.update(os.path.relpath(os.path.join(dirpath, n), MODULES).replace(os.sep, "/")
                       for n in names if n.endswith(".py"))
    return out


def test_firmware_manifest_freezes_the_device_code():
    m = evaluate(os.path.join(FIRMWARE, "manifest.py"))
    targets = {t for _full, t in m.files}
    assert device_py_files() | {"sipmote_start.py", "main.py"} == targets
    for full, _t in m.files:
        assert os.path.isfile(full), full
    assert m.requires == ["aiorepl", "logging"]
    assert m.external == []
    assert m.metadata["license"] == "MIT"


def test_the_simulator_board_is_only_in_the_unix_ports_manifest():
    # unix_sim (the machine stand-in, its entry point, control port, WAV files) runs on the
    # unix port only: firmware/manifest.py never freezes it, unix_sim_manifest.py adds it.
    firmware = {t for _f, t in evaluate(os.path.join(FIRMWARE, "manifest.py")).files}
    sim = {t for _f, t in evaluate(os.path.join(FIRMWARE, "unix_sim_manifest.py")).files}
    assert not [t for t in firmware if "sim" in t.split("/")[0] or "sim" in t.split("/")[-1]]
    on_disk = {"unix_sim/" + n for n in os.listdir(os.path.join(MODULES, "unix_sim"))
               if n.endswith(".py")}
    assert {"unix_sim/board.py", "unix_sim/main.py", "unix_sim/control.py", "unix_sim/wav.py",
            "unix_sim/_sim_viper.py"} <= on_disk
    assert sim == firmware | on_disk


@pytest.mark.parametrize("path", BOARD_MANIFESTS, ids=lambda p: p.split(os.sep)[-2])
def test_board_manifest_includes_the_port_and_sipmote(path):
    board_dir = os.path.dirname(path)
    m = evaluate(path, BOARD_DIR=board_dir)
    # the port's manifest needs a MicroPython tree; everything else resolves and exists
    assert m.external == ["$(PORT_DIR)/boards/manifest.py"]
    assert os.path.join(FIRMWARE, "manifest.py") in m.included
    assert {t for _f, t in m.files} >= {"phone/app.py", "voip/g711.py", "sipmote_start.py",
                                         "main.py"}
    assert all(os.path.isfile(full) for full, _t in m.files)


def test_every_board_with_a_definition_has_a_manifest():
    for name in board_names():
        has_definition = os.path.isfile(os.path.join(BOARDS, name, "mpconfigboard.cmake"))
        assert has_definition == os.path.isfile(os.path.join(BOARDS, name, "manifest.py"))


def test_board_manifest_against_a_stand_in_port_tree(tmp_path):
    # With $(PORT_DIR) given, the port's manifest runs too (freeze() of its modules).
    port = tmp_path / "ports" / "esp32"
    (port / "boards").mkdir(parents=True)
    (port / "modules").mkdir()
    (port / "modules" / "_boot.py").write_text("import gc\n")
    (port / "boards" / "manifest.py").write_text('freeze("$(PORT_DIR)/modules")\n')
    board = os.path.join(BOARDS, "atom_echo")
    m = evaluate(os.path.join(board, "manifest.py"), BOARD_DIR=board, PORT_DIR=str(port))
    assert m.external == []
    assert ("_boot.py" in {t for _f, t in m.files})


# -- the evaluator's semantics (as MicroPython's tools/manifestfile.py) ---------------------


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_include_a_directory_runs_its_manifest_once(tmp_path):
    write(tmp_path / "lib" / "manifest.py", 'module("a.py")\n')
    write(tmp_path / "lib" / "a.py", "x = 1\n")
    write(tmp_path / "manifest.py", 'include("lib")\ninclude("lib/manifest.py")\n')
    m = evaluate(str(tmp_path / "manifest.py"))
    assert [t for _f, t in m.files] == ["a.py"]


def test_options_reach_the_included_manifest(tmp_path):
    write(tmp_path / "sub" / "manifest.py",
          'options.defaults(extra=False)\nif options.extra:\n    module("e.py")\n')
    write(tmp_path / "sub" / "e.py", "")
    write(tmp_path / "manifest.py", 'include("sub", extra=True)\n')
    assert [t for _f, t in evaluate(str(tmp_path / "manifest.py")).files] == ["e.py"]


@pytest.mark.parametrize("text, message", [
    ('package("nope")\n', "no such directory"),
    ('module("missing.py")\n', "no such file"),
    ('module("x.txt")\n', "must be a .py file"),
    ('include("nowhere.py")\n', "no such manifest"),
    ('metadata(version="1")\nmetadata(version="2")\n', "duplicate call to metadata()"),
    ('frobnicate("x")\n', "NameError"),
])
def test_broken_manifests_are_named(tmp_path, text, message):
    write(tmp_path / "manifest.py", text)
    with pytest.raises(FirmwareError, match=message.replace("(", r"\(").replace(")", r"\)")):
        evaluate(str(tmp_path / "manifest.py"))


def test_require_searches_micropython_lib_when_given(tmp_path):
    write(tmp_path / "mlib" / "micropython" / "aiorepl" / "manifest.py",
          'metadata(version="0.2")\nmodule("aiorepl.py")\n')
    write(tmp_path / "mlib" / "micropython" / "aiorepl" / "aiorepl.py", "")
    write(tmp_path / "manifest.py", 'metadata(version="1")\nrequire("aiorepl")\n')
    m = evaluate(str(tmp_path / "manifest.py"), MPY_LIB_DIR=str(tmp_path / "mlib"))
    assert [t for _f, t in m.files] == ["aiorepl.py"] and m.metadata["version"] == "1"
    write(tmp_path / "manifest.py", 'require("nosuch")\n')
    with pytest.raises(FirmwareError, match="no package 'nosuch'"):
        evaluate(str(tmp_path / "manifest.py"), MPY_LIB_DIR=str(tmp_path / "mlib"))


# -- package.json -----------------------------------------------------------------------------


def test_package_json_is_current():
    with open(os.path.join(ROOT, "package.json")) as f:
        committed = f.read()
    assert committed == package_json_text(), (
        "package.json is stale: python -m sipmote.firmware package-json")


def test_package_json_lists_every_device_module_and_only_real_paths():
    with open(os.path.join(ROOT, "package.json")) as f:
        pkg = json.load(f)
    for _target, url in pkg["urls"]:
        assert os.path.isfile(os.path.join(ROOT, url)), url
        assert not url.startswith("/") and ".." not in url
    targets = {t for t, _u in pkg["urls"]}
    assert device_py_files() | {"sipmote_start.py"} <= targets
    for name in board_names():
        sim = name.startswith("unix_sim")
        assert ("boards/%s/profile.json" % name in targets) is not sim, name
    assert not [t for t in targets if t.startswith("unix_sim/")]  # the simulator stays home
    requires = evaluate(os.path.join(FIRMWARE, "manifest.py")).requires
    assert [d for d, _v in pkg["deps"]] == requires


def test_mip_installs_package_json_on_a_unix_port_board(tmp_path):
    # mpremote mip install from a local package.json (the GitHub one resolves its relative
    # URLs the same way), minus deps (those come from micropython.org: no network here).
    sys.path.insert(0, HERE)
    from unix_board import UnixBoard

    with open(os.path.join(ROOT, "package.json")) as f:
        pkg = json.load(f)
    pkg["deps"] = []
    src = tmp_path / "src"
    src.mkdir()
    for top in ("modules", "firmware", "boards"):
        os.symlink(os.path.join(ROOT, top), src / top)
    (src / "package.json").write_text(json.dumps(pkg))
    board_root = tmp_path / "board"
    with UnixBoard(board_root) as board:
        cmd = [sys.executable, "-m", "mpremote", "connect", board.port, "resume", "mip",
               "install", "--target", str(board_root), str(src / "package.json")]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stdout + r.stderr
        check = ("from voip import g711; import phone.board as b, sipmote_start; "
                 "print(g711.IMPLEMENTATION, b.load_profile('atom_echo')['name'], "
                 "sipmote_start.__file__)")
        r = subprocess.run([sys.executable, "-m", "mpremote", "connect", board.port, "resume",
                            "exec", check], capture_output=True, text=True, timeout=60)
    assert r.stdout.split() == ["viper", "atom_echo", "sipmote_start.py"], r.stdout + r.stderr
    assert (board_root / "boards" / "esp32s3_devkitc" / "profile.json").is_file()
