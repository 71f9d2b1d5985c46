# `sipmote sim` itself: the console script starts the firmware on the unix port, its control
# port answers, and the exit status and SIM-RESULT line say what happened. No SIP peer here
# (tests/interop/test_device_*.py have those).
import json
import os
import shutil
import subprocess
import sys

from simdevice import device_config, free_udp_port, require_micropython

from sipmote.sim import SimDevice


def sipmote_script():
    return shutil.which("sipmote") or os.path.join(os.path.dirname(sys.executable), "sipmote")


def test_a_broken_config_exits_2_naming_the_key(tmp_path):
    require_micropython()
    path = str(tmp_path / "bad.json")
    device_config(path, sip={"port": 99999})
    dev = SimDevice(path, heapsize="1M").start()
    assert dev.wait(15) == 2
    assert "config error: sip.port must be an integer 1..65535" in dev.log()
    assert dev.result["exit"] == 2


def test_an_unknown_board_exits_2(tmp_path):
    require_micropython()
    path = str(tmp_path / "c.json")
    device_config(path, board="no_such_board")
    dev = SimDevice(path, heapsize="1M").start()
    assert dev.wait(15) == 2
    assert "no profile for board 'no_such_board'" in dev.log()


def test_the_console_script_runs_the_phone_for_its_duration(tmp_path):
    require_micropython()
    path = str(tmp_path / "c.json")
    device_config(path, sip={"password": "sekret-sip"}, wifi={"password": "sekret-wifi"})
    out = subprocess.run(
        [sipmote_script(), "sim", "--config", path, "--duration", "2", "--tone", "440"],
        capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    result = json.loads(lines[-1][len("SIM-RESULT "):])
    assert result == dict(result, exit=0, reason="duration reached", placed=0)
    assert "wifi: up: 127.0.0.1" in out.stdout
    assert "sekret" not in out.stdout  # the config dump masks both passwords
    assert '"password": "***"' in out.stdout


def test_control_port_status_and_quit(tmp_path):
    require_micropython()
    path = str(tmp_path / "c.json")
    device_config(path)
    port = free_udp_port()
    dev = SimDevice(path, control_port=port, heapsize="1M").start()
    try:
        dev.wait_for("sip: on 127.0.0.1", 15)
        status = dev.status()
        assert status["board"] == "unix_sim"
        assert status["wifi"] == {"state": "up", "ip": "127.0.0.1", "drops": 0}
        assert status["sip"]["registration"] == "none"  # no registrar configured
        assert status["led"] == "idle" and status["call"] is None
        assert status["heap"]["used"] > 0
        assert dev.control("hangup") == "error no call"
        assert dev.control("dance").startswith("error unknown command")
        assert dev.control("call").startswith("error no call target")
        assert dev.control("quit 7") == "ok"
        assert dev.wait(10) == 7
    finally:
        dev.close()
    assert dev.result["reason"] == "quit from the control port"
