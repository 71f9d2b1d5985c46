# The console script is installed and answers --help.
import shutil
import subprocess
import sys

from sipmote.cli import main


def test_help_exits_zero(capsys):
    try:
        main(["--help"])
    except SystemExit as e:
        assert e.code == 0
    assert "sipmote" in capsys.readouterr().out


def test_console_script_is_installed():
    script = shutil.which("sipmote") or str(
        __import__("pathlib").Path(sys.executable).parent / "sipmote"
    )
    out = subprocess.run([script, "--help"], capture_output=True, text=True, check=True).stdout
    assert "usage: sipmote" in out
