# `sipmote device` without a board: argument handling, the exact esptool and mpremote
# command lines, the errors when no port or board is there, secrets masked, config edits.
import io
import json
import os
import pty
import subprocess
import sys
import threading
import tty

import pytest

from sipmote.cli import main
from sipmote.device import DeviceError, config_edit
from sipmote.device.command import flash_commands, read_console
from sipmote.device.ports import find_port
from sipmote.device.remote import Remote, explain_failure, snippet


class FakePort:
    def __init__(self, device, vid=None, pid=None, description="n/a"):
        self.device, self.vid, self.pid, self.description = device, vid, pid, description


def lister(*ports):
    return lambda: list(ports)


# -- ports ------------------------------------------------------------------------------------


def test_one_usb_serial_port_is_the_board():
    ports = lister(FakePort("/dev/ttyS0"), FakePort("/dev/ttyUSB0", 0x10C4, 0xEA60))
    assert find_port(None, ports, env={}) == "/dev/ttyUSB0"


def test_a_known_bridge_wins_over_an_unknown_usb_device():
    ports = lister(FakePort("/dev/ttyACM0", 0x2341, 0x0043, "Arduino Uno"),
                   FakePort("/dev/ttyUSB0", 0x1A86, 0x55D4))
    assert find_port(None, ports, env={}) == "/dev/ttyUSB0"


def test_two_boards_are_not_guessed():
    ports = lister(FakePort("/dev/ttyUSB0", 0x10C4, 0xEA60), FakePort("/dev/ttyACM0", 0x303A,
                                                                       0x1001))
    with pytest.raises(DeviceError) as e:
        find_port(None, ports, env={})
    text = str(e.value)
    assert "2 USB serial ports" in text and "/dev/ttyACM0" in text and "--port" in text
    assert "Espressif USB Serial/JTAG" in text


def test_no_board_says_what_to_check():
    with pytest.raises(DeviceError, match="no board found") as e:
        find_port(None, lister(FakePort("/dev/ttyS0")), env={})
    assert "dialout" in str(e.value) and "data cable" in str(e.value)


def test_a_named_port_that_does_not_exist():
    with pytest.raises(DeviceError, match="no serial port /dev/ttyNOPE9"):
        find_port("/dev/ttyNOPE9", lister(), env={})
    assert find_port(None, lister(), env={"SIPMOTE_PORT": "rfc2217://lab:4000"}) == (
        "rfc2217://lab:4000")


def test_cli_without_a_board_fails_clearly(capsys):
    code = main(["device", "status", "--port", "/dev/ttyNOPE9"])
    assert code == 2
    assert "no serial port /dev/ttyNOPE9: is the board plugged in?" in capsys.readouterr().err


def test_mpremote_on_a_missing_port_is_explained():
    # The real mpremote, asked for a port that is not there (find_port is bypassed).
    remote = Remote("/dev/ttyNOPE9")
    with pytest.raises(DeviceError) as e:
        remote.probe()
    assert "cannot open /dev/ttyNOPE9" in str(e.value)
    assert "failed to access /dev/ttyNOPE9" in str(e.value)  # mpremote's own words
    assert "does not answer like MicroPython" in explain_failure("P", "could not enter raw repl")


# -- flash ------------------------------------------------------------------------------------


def image(tmp_path, name, chip_id):
    head = bytearray(4096)
    head[0], head[1] = 0xE9, 3
    head[12:14] = chip_id.to_bytes(2, "little")
    path = tmp_path / name
    path.write_bytes(bytes(head))
    return str(path)


def test_flash_command_lines(tmp_path):
    esp32 = image(tmp_path, "esp32.bin", 0)
    s3 = image(tmp_path, "s3.bin", 9)
    py = [sys.executable, "-m", "esptool"]
    assert flash_commands("/dev/ttyUSB0", esp32, board="esp32_devkit") == [
        py + ["--chip", "esp32", "--port", "/dev/ttyUSB0", "--baud", "460800", "write-flash",
              "0x1000", esp32]]
    # the Atom's USB serial bridge times out above 115200 baud
    assert flash_commands("/dev/ttyUSB0", esp32, board="atom_echo")[0][8] == "115200"
    assert flash_commands("/dev/ttyACM0", s3, board="esp32s3_devkitc", erase=True,
                          baud=921600) == [
        py + ["--chip", "esp32s3", "--port", "/dev/ttyACM0", "erase-flash"],
        py + ["--chip", "esp32s3", "--port", "/dev/ttyACM0", "--baud", "921600", "write-flash",
              "0x0", s3]]
    # an image for another chip than the board's never reaches esptool
    with pytest.raises(Exception, match="for esp32s3, not esp32"):
        flash_commands("/dev/ttyUSB0", s3, board="esp32_devkit")


def test_flash_dry_run_through_the_cli(tmp_path, capsys):
    fw = image(tmp_path, "fw.bin", 5)
    assert main(["device", "flash", "--firmware", fw, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "--chip esp32c3 --port PORT --baud 460800 write-flash 0x0 " + fw in out


def test_flash_without_an_image_says_how_to_get_one(capsys):
    assert main(["device", "flash", "--board", "atom_echo", "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "no firmware image" in err and "make firmware BOARD=" in err


def test_esptool_on_a_missing_port_fails_with_its_message(tmp_path):
    cmd = flash_commands("/dev/ttyNOPE9", image(tmp_path, "fw.bin", 0), chip="esp32")[0]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode != 0
    assert "Could not open /dev/ttyNOPE9" in r.stdout + r.stderr


# -- mpremote command lines --------------------------------------------------------------------


def test_remote_chains_steps_without_soft_reset():
    r = Remote("/dev/ttyUSB0")
    args = r.chain(["fs", "cp", "a", r.path("lib/a.mpy")], ["exec", "print(1)"])
    assert args == [sys.executable, "-m", "mpremote", "connect", "/dev/ttyUSB0", "resume",
                    "fs", "cp", "a", ":/lib/a.mpy", "+", "exec", "print(1)"]
    assert Remote("/dev/x", root="/tmp/b").path("config.json") == ":/tmp/b/config.json"


def test_snippet_binds_values_as_literals():
    code = snippet("print(R + NAME)\n", R="/", NAME='x"; import os; os.remove("y')
    ns = {}
    exec(code, ns)  # the quote stays inside the string
    assert ns["NAME"] == 'x"; import os; os.remove("y'


def test_remote_runner_failure_and_timeout_become_device_errors():
    class Done:
        returncode, stdout, stderr = 1, "", "mpremote: no device found\n"

    r = Remote("auto", runner=lambda *a, **k: Done())
    with pytest.raises(DeviceError, match="no board found on any USB serial port"):
        r.probe()

    def slow(*a, **k):
        raise subprocess.TimeoutExpired(a[0], 1)

    with pytest.raises(DeviceError, match="no answer from the board on P within 60 s"):
        Remote("P", runner=slow).probe()


# -- config editing on a local file ------------------------------------------------------------


def test_config_set_get_show_on_a_local_file(tmp_path, capsys, monkeypatch):
    path = str(tmp_path / "config.json")
    assert main(["device", "config", "--file", path, "--board", "atom_echo", "set",
                 "wifi.ssid", "home net"]) == 0
    assert main(["device", "config", "--file", path, "set", "sip.port", "5070"]) == 0
    assert main(["device", "config", "--file", path, "set", "sip.user", "1234"]) == 0
    monkeypatch.setattr("getpass.getpass", lambda prompt: "s3cret-wifi")
    assert main(["device", "config", "--file", path, "set", "wifi.password"]) == 0
    monkeypatch.setattr("sys.stdin", io.StringIO("sip-s3cret\n"))
    assert main(["device", "config", "--file", path, "set", "sip.password", "--stdin"]) == 0
    capsys.readouterr()
    with open(path) as f:
        data = json.load(f)
    assert data["board"] == "atom_echo" and data["wifi"]["ssid"] == "home net"
    assert data["sip"]["port"] == 5070 and data["sip"]["user"] == "1234"
    assert data["wifi"]["password"] == "s3cret-wifi" and data["sip"]["password"] == "sip-s3cret"

    assert main(["device", "config", "--file", path, "show"]) == 0
    shown = capsys.readouterr().out
    assert "s3cret" not in shown and json.loads(shown)["wifi"]["password"] == "***"
    assert main(["device", "config", "--file", path, "get", "sip.password"]) == 0
    assert capsys.readouterr().out.strip() == "***"
    assert main(["device", "config", "--file", path, "get", "sip.port"]) == 0
    assert capsys.readouterr().out.strip() == "5070"


def test_a_secret_set_on_the_command_line_is_not_echoed(tmp_path, capsys):
    path = str(tmp_path / "c.json")
    main(["device", "config", "--file", path, "--board", "unix_sim", "set", "wifi.password",
          "hunter2"])
    captured = capsys.readouterr()
    assert "hunter2" not in captured.out + captured.err
    assert "wifi.password = ***" in captured.out and "shell history" in captured.err


def test_invalid_values_never_reach_the_file(tmp_path, capsys):
    path = tmp_path / "c.json"
    main(["device", "config", "--file", str(path), "--board", "unix_sim", "set", "sip.user",
          "kitchen"])
    before = path.read_text()
    assert main(["device", "config", "--file", str(path), "set", "sip.port", "70000"]) == 2
    assert main(["device", "config", "--file", str(path), "set", "sip.prot", "5060"]) == 2
    assert main(["device", "config", "--file", str(path), "set", "wifi.password",
                 "x" * 80]) == 2
    err = capsys.readouterr().err
    assert "sip.port must be an integer 1..65535" in err and "unknown key sip.prot" in err
    assert "x" * 80 not in err  # a rejected secret is not shown either
    assert path.read_text() == before


def test_show_masks_even_a_config_the_phone_would_refuse(tmp_path, capsys):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"wifi": {"password": "pw-123"}, "extra": {"api_token": "t"}}))
    assert main(["device", "config", "--file", str(path), "show"]) == 2
    out, err = capsys.readouterr()
    assert "pw-123" not in out + err and '"api_token": "***"' in out
    assert "config error" in err


def test_config_edit_helpers():
    data = {"sip": {"user": "a"}}
    assert config_edit.unset_key(config_edit.set_key(data, "sip.port", 1), "sip.port") == data
    with pytest.raises(KeyError):
        config_edit.get_key(data, "sip.port")
    with pytest.raises(DeviceError, match="bad key"):
        config_edit.set_key(data, "sip..port", 1)
    assert config_edit.is_secret("wifi.password") and not config_edit.is_secret("wifi.ssid")
    assert config_edit.mask({"sip": {"password": ""}}) == {"sip": {"password": ""}}


def test_config_on_a_board_without_a_port(capsys):
    assert main(["device", "config", "show", "--port", "/dev/ttyNOPE9"]) == 2
    assert "no serial port /dev/ttyNOPE9" in capsys.readouterr().err


# -- logs ---------------------------------------------------------------------------------------


def test_logs_prints_the_console_without_writing_to_it():
    master, slave = pty.openpty()
    tty.setraw(slave)
    name = os.ttyname(slave)
    lines = b"   0.010 INFO  wifi: up: 10.0.0.7\r\n   0.020 INFO  sip: registered (600 s)\r\n"
    writer = threading.Timer(0.3, os.write, (master, lines))
    writer.start()
    out = io.StringIO()
    try:
        assert read_console(name, lines=2, seconds=10, out=out) == 2
    finally:
        writer.join()
    assert out.getvalue().splitlines() == ["   0.010 INFO  wifi: up: 10.0.0.7",
                                           "   0.020 INFO  sip: registered (600 s)"]
    os.set_blocking(master, False)
    try:
        written = os.read(master, 100)
    except BlockingIOError:
        written = b""
    assert written == b""  # logs sent nothing: no Ctrl-C, nothing interrupted
    os.close(master)
    os.close(slave)
