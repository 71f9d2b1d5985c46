# `sipmote device` end to end through the real mpremote, with the MicroPython unix port on a
# pseudo-terminal as the board (tests/host/unix_board.py): deploy, config, autostart, status.
import json
import os
import subprocess
import sys

import pytest

from sipmote.cli import main
from sipmote.device import DeviceError
from sipmote.device.deploy import check_arch, choose_mode

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from unix_board import UnixBoard  # noqa: E402


def device(board, *args):
    return main(["device", *args, "--port", board.port, "--root", board.root])


def board_exec(board, code):
    r = subprocess.run([sys.executable, "-m", "mpremote", "connect", board.port, "resume",
                        "exec", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


@pytest.fixture
def board(tmp_path, monkeypatch):
    # deploy builds its bundle under build/; here, under this test's own directory
    monkeypatch.setattr("sipmote.firmware.bundle.BUILD", str(tmp_path / "build"))
    with UnixBoard(tmp_path / "board") as b:
        yield b


def test_deploy_files_then_run_from_them(board, capsys):
    assert device(board, "deploy", "--board", "unix_sim", "--no-mip", "--no-reset") == 0
    out = capsys.readouterr().out
    assert "wrote main.py" in out and "wrote config.json for unix_sim" in out
    root = board.root
    for rel in ("lib/voip/_g711_viper.mpy", "lib/phone/app.mpy", "lib/sipmote_start.mpy",
                "lib/sipmote.json", "boards/unix_sim/profile.json", "main.py", "config.json"):
        assert os.path.isfile(os.path.join(root, rel)), rel
    with open(os.path.join(root, "config.json")) as f:
        assert json.load(f)["board"] == "unix_sim"
    got = board_exec(board, "from voip import g711; import phone.board as b; "
                            "print(g711.IMPLEMENTATION, g711._viper.__file__, "
                            "b.load_profile('unix_sim')['platform'])")
    assert got.split() == ["viper", os.path.join(root, "lib/voip/_g711_viper.mpy"), "sim"]


def test_deploy_again_keeps_config_and_main_and_clears_stale_modules(board, capsys):
    assert device(board, "deploy", "--board", "unix_sim", "--no-mip", "--no-reset") == 0
    assert device(board, "config", "set", "sip.user", "kitchen") == 0
    with open(os.path.join(board.root, "main.py"), "w") as f:
        f.write("print('mine')\n")
    stale = os.path.join(board.root, "lib", "voip", "rtp.py")  # would shadow rtp.mpy
    with open(stale, "w") as f:
        f.write("raise ImportError('stale source')\n")
    capsys.readouterr()
    assert device(board, "deploy", "--board", "unix_sim", "--no-mip", "--no-reset") == 0
    out = capsys.readouterr().out
    assert "kept the board's config.json" in out and "kept your main.py" in out
    assert not os.path.exists(stale)
    with open(os.path.join(board.root, "config.json")) as f:
        assert json.load(f)["sip"]["user"] == "kitchen"
    with open(os.path.join(board.root, "main.py")) as f:
        assert f.read() == "print('mine')\n"


def test_deploy_for_another_chip_is_refused(board, capsys):
    assert device(board, "deploy", "--board", "atom_echo", "--no-mip", "--no-reset") == 2
    assert "the board runs x64 code but BOARD is a xtensawin board" in capsys.readouterr().err
    assert not os.path.exists(os.path.join(board.root, "lib", "voip"))


def test_config_on_the_board_masks_secrets(board, capsys):
    assert device(board, "config", "show") == 2
    assert "does not exist yet" in capsys.readouterr().err
    assert device(board, "config", "--board", "unix_sim", "set", "wifi.ssid", "home") == 0
    assert device(board, "config", "set", "wifi.password", "hunter2") == 0
    assert device(board, "config", "set", "sip.port", "99999") == 2
    capsys.readouterr()
    assert device(board, "config", "show") == 0
    shown = capsys.readouterr().out
    assert "hunter2" not in shown and json.loads(shown)["wifi"] == {"ssid": "home",
                                                                   "password": "***"}
    with open(os.path.join(board.root, "config.json")) as f:
        stored = json.load(f)
    assert stored["wifi"]["password"] == "hunter2" and stored["sip"].get("port") is None
    assert not os.path.exists(os.path.join(board.root, "config.json.new"))


def test_autostart_flag(board, capsys):
    flag = os.path.join(board.root, "noautostart")
    assert device(board, "autostart", "off") == 0
    assert os.path.isfile(flag)
    assert device(board, "autostart", "on") == 0
    assert not os.path.exists(flag)


def test_status_of_a_phone_built_on_the_board(board, capsys):
    assert device(board, "deploy", "--board", "unix_sim", "--no-mip", "--no-reset") == 0
    capsys.readouterr()
    assert device(board, "status") == 0
    out = capsys.readouterr().out
    assert "phone     not running" in out and "sipmote   0.1.0 (x64)" in out
    # the phone as main.py builds it (not run: its tasks would hold the REPL)
    board_exec(board, "from phone import app; app.build('config.json')")
    assert device(board, "status") == 0
    out = capsys.readouterr().out
    assert "board unix_sim, up " in out and "call  none (placed 0, answered 0)" in out
    assert device(board, "status", "--json") == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["phone"]["board"] == "unix_sim" and payload["phone"]["call"] is None


def test_mode_and_arch_choices():
    stock = {"machine": "ESP32 module with ESP32", "mpy": 6 | 3 << 8 | 10 << 10,
             "version": [1, 29, 0], "romfs": False}
    ours = dict(stock, machine="sipmote M5Stack Atom Echo with ESP32-PICO-D4", romfs=True)
    assert choose_mode(stock) == "files" and choose_mode(ours) == "profile"
    assert choose_mode(ours, "romfs") == "romfs"
    with pytest.raises(DeviceError, match="frozen modules come before /lib"):
        choose_mode(ours, "files")
    with pytest.raises(DeviceError, match="no ROMFS partition"):
        choose_mode(stock, "romfs")
    assert check_arch(stock, None, "6.3") == "xtensawin"
    old = dict(stock, mpy=6 | 2 << 8 | 10 << 10, version=[1, 22, 2])
    with pytest.raises(DeviceError, match="MicroPython 1.22.2 loads .mpy v6.2"):
        check_arch(old, "xtensawin", "6.3")


def test_deploy_no_code_writes_profile_and_config_only(board, capsys):
    # what deploy does on the sipmote firmware, where the app is frozen
    assert device(board, "deploy", "--no-code", "--board", "unix_sim", "--no-reset") == 0
    assert "the app is frozen in this firmware" in capsys.readouterr().out
    assert os.path.isfile(os.path.join(board.root, "boards", "unix_sim", "profile.json"))
    assert os.path.isfile(os.path.join(board.root, "config.json"))
    assert not os.path.exists(os.path.join(board.root, "lib", "voip"))
    assert not os.path.exists(os.path.join(board.root, "main.py"))
