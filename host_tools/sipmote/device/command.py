"""`sipmote device`: flash, deploy, configure and watch a board on a USB serial port.

    sipmote device ports                               USB serial ports and what they are
    sipmote device flash [--board B | --chip C] [--firmware F] [--erase]
    sipmote device deploy [--board B] [--files | --romfs | --no-code] [--no-mip]
    sipmote device config show | get KEY | set KEY [VALUE] | unset KEY  [--file LOCAL]
    sipmote device autostart on | off
    sipmote device status [--json]  |  repl  |  logs [--lines N] [--seconds S]  |  reset

--port (or $SIPMOTE_PORT) names the serial port; without it the one USB serial port attached
is used. flash runs esptool; the rest run mpremote with `resume`, so nothing here soft-resets
a running phone. Secrets in the config (passwords) are never printed: "***" when set; `config
set wifi.password` without a value asks for it without echo.
"""

import argparse
import getpass
import json
import os
import subprocess
import sys
import time

from ..firmware import FirmwareError
from ..firmware.boards import (
    DEFAULT_FLASH_BAUD,
    FLASH_BAUD,
    board_info,
    board_names,
    flash_offset,
)
from . import DeviceError, config_edit
from .ports import describe, find_port, usb_ports
from .remote import Remote, mpremote_command

HELP = "flash, deploy, configure and watch a board (esptool and mpremote)"


def _port_args(p):
    p.add_argument("--port", help="serial port (default $SIPMOTE_PORT, else the one attached)")
    # The board's filesystem root: "/" on a board; a directory when the unix port plays one.
    p.add_argument("--root", default="/", help=argparse.SUPPRESS)


def add_arguments(parser):
    sub = parser.add_subparsers(dest="device_command", metavar="ACTION", required=True)
    sub.add_parser("ports", help="list USB serial ports")
    p = sub.add_parser("flash", help="write a firmware image with esptool")
    _port_args(p)
    p.add_argument("--board", choices=board_names(), help="board (gives the chip and image)")
    p.add_argument("--chip", help="esp32, esp32s3, esp32c3, ... (default: from board/image)")
    p.add_argument("--firmware", help="image (default build/firmware/BOARD/firmware.bin)")
    p.add_argument("--erase", action="store_true", help="erase the whole flash first")
    p.add_argument("--baud", type=int, help="esptool speed (default 460800; Atom: 115200)")
    p.add_argument("--dry-run", action="store_true", help="print the esptool commands only")
    p = sub.add_parser("deploy", help="copy the app (bundle or ROMFS), profile and config")
    _port_args(p)
    p.add_argument("--board", choices=board_names())
    how = p.add_mutually_exclusive_group()
    how.add_argument("--files", dest="mode", action="store_const", const="files",
                     help=".mpy bundle to /lib (stock MicroPython)")
    how.add_argument("--romfs", dest="mode", action="store_const", const="romfs",
                     help="ROMFS image (firmware with a romfs partition)")
    how.add_argument("--no-code", dest="mode", action="store_const", const="profile",
                     help="board profile and config only (the app is frozen)")
    p.add_argument("--no-mip", action="store_true", help="skip mpremote mip install")
    p.add_argument("--no-reset", action="store_true", help="do not reset the board after")
    p = sub.add_parser("config", help="show or edit the board's config.json")
    _port_args(p)
    p.add_argument("--file", metavar="JSON", help="edit a local file instead of the board's")
    p.add_argument("--board", choices=board_names(), help="board for a new config")
    p.add_argument("action", choices=("show", "get", "set", "unset"))
    p.add_argument("key", nargs="?")
    p.add_argument("value", nargs="?")
    p.add_argument("--stdin", action="store_true", help="read the value from stdin")
    p = sub.add_parser("autostart", help="start the phone at boot (on) or not (off)")
    _port_args(p)
    p.add_argument("state", choices=("on", "off"))
    for name, text in (("status", "the phone's status() and what is installed"),
                       ("repl", "the board's REPL (mpremote; Ctrl-] leaves)"),
                       ("reset", "hard-reset the board")):
        p = sub.add_parser(name, help=text)
        _port_args(p)
        if name == "status":
            p.add_argument("--json", action="store_true", help="one JSON object")
    p = sub.add_parser("logs", help="print the board's console output (sends nothing)")
    _port_args(p)
    p.add_argument("--baud", type=int, default=115200)
    p.add_argument("--lines", type=int, default=0, help="stop after N lines")
    p.add_argument("--seconds", type=float, default=0, help="stop after S seconds")


def run(args):
    try:
        return ACTIONS[args.device_command](args) or 0
    except (DeviceError, FirmwareError) as e:
        print("sipmote device: %s" % e, file=sys.stderr)
        return 2


# -- actions ---------------------------------------------------------------------------------


def cmd_ports(args):
    found = usb_ports()
    if not found:
        print("no USB serial ports")
    for p in found:
        print(describe(p))


def esptool_command(*args):
    return [sys.executable, "-m", "esptool", *args]


def flash_commands(port, firmware, chip=None, board=None, baud=None, erase=False):
    """The esptool command lines that write `firmware` (checked: chip, offset)."""
    if board and not chip:
        chip = board_info(board)["chip"]
    baud = baud or FLASH_BAUD.get(board, DEFAULT_FLASH_BAUD)
    if not os.path.isfile(firmware):
        raise DeviceError("no firmware image %s: build one with  make firmware BOARD=<board>  "
                          "or use MicroPython's own for the chip (micropython.org/download) and "
                          "then  sipmote device deploy  (docs/flashing.md)" % firmware)
    with open(firmware, "rb") as f:
        head = f.read(0x1100)
    chip, offset = flash_offset(chip, head)
    cmds = []
    if erase:
        cmds.append(esptool_command("--chip", chip, "--port", port, "erase-flash"))
    cmds.append(esptool_command("--chip", chip, "--port", port, "--baud", str(baud),
                                "write-flash", "0x%x" % offset, firmware))
    return cmds


def cmd_flash(args):
    firmware = args.firmware
    if not firmware:
        if not args.board:
            raise DeviceError("which image? pass --firmware FILE or --board NAME")
        from ..firmware.build import build_dir

        firmware = os.path.join(build_dir(args.board), "firmware.bin")
    port = args.port if args.dry_run and args.port else None
    port = port or ("PORT" if args.dry_run else find_port(args.port))
    cmds = flash_commands(port, firmware, args.chip, args.board, args.baud, args.erase)
    for cmd in cmds:
        print("$ " + " ".join(cmd))
        if args.dry_run:
            continue
        if subprocess.call(cmd) != 0:
            raise DeviceError("esptool could not flash %s. If it could not connect: hold BOOT "
                              "(GPIO0), press and release RESET, release BOOT, and run this "
                              "again; close any serial monitor holding the port" % port)
    if not args.dry_run:
        print("flashed. Next: sipmote device deploy --board <board> (profile and config)")


def _remote(args):
    return Remote(find_port(args.port), root=args.root)


def cmd_deploy(args):
    from .deploy import deploy

    deploy(_remote(args), board=args.board, mode=args.mode, mip=not args.no_mip,
           reset=not args.no_reset)


def _load_config(args, remote):
    """(config dict, where) from --file or the board; a new one from the template if none."""
    if args.file:
        if not os.path.exists(args.file):
            text = None
        else:
            with open(args.file) as f:
                text = f.read()
        where = args.file
    else:
        data = remote.read_bytes("config.json")
        text = None if data is None else data.decode("utf-8", "replace")
        where = "the board's config.json"
    if text is None:
        if args.action in ("show", "get", "unset"):
            raise DeviceError("%s does not exist yet: `config set` writes one (with --board)" %
                              where)
        if not args.board:
            raise DeviceError("%s does not exist yet: pass --board NAME to start from the "
                              "template" % where)
        return config_edit.template(args.board), where
    return config_edit.loads(text, where), where


def _save_config(args, remote, data):
    text = config_edit.dumps(data)
    if args.file:
        tmp = args.file + ".new"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, args.file)
    else:
        remote.write_bytes("config.json", text.encode())


def _read_value(args):
    key = args.key
    if args.value is not None:
        if config_edit.is_secret(key):
            print("note: a secret on the command line stays in your shell history; leave the "
                  "value out to be asked for it", file=sys.stderr)
        return args.value
    if args.stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if config_edit.is_secret(key):
        return getpass.getpass("%s (not shown): " % key)
    raise DeviceError("config set %s needs a value" % key)


def cmd_config(args):
    remote = None if args.file else _remote(args)
    data, where = _load_config(args, remote)
    if args.action == "show":
        print(json.dumps(config_edit.mask(data), indent=2, sort_keys=True))
        config_edit.validate(data)
        return 0
    if not args.key:
        raise DeviceError("config %s needs a KEY (like wifi.ssid)" % args.action)
    if args.action == "get":
        try:
            value = config_edit.get_key(data, args.key)
        except KeyError:
            raise DeviceError("%s is not set in %s" % (args.key, where)) from None
        print(config_edit.show_value(args.key, value))
        return 0
    if args.action == "set":
        data = config_edit.set_value(data, args.key, _read_value(args))
        shown = config_edit.show_value(args.key, config_edit.get_key(data, args.key))
    else:
        try:
            data = config_edit.unset_key(data, args.key)
        except KeyError:
            raise DeviceError("%s is not set in %s" % (args.key, where)) from None
        config_edit.validate(data)
        shown = "(default)"
    _save_config(args, remote, data)
    print("%s = %s in %s" % (args.key, shown, where))
    if remote is not None:
        print("the phone reads its config at boot: sipmote device reset")
    return 0


def cmd_autostart(args):
    _remote(args).set_flag("noautostart", args.state == "off")
    print("the phone %s at boot" % ("starts" if args.state == "on" else "does not start"))


def cmd_status(args):
    payload, lines = _remote(args).status()
    if args.json:
        print(json.dumps(payload, indent=1, sort_keys=True))
        return 0
    for line in lines:
        print(line)
    print("firmware  %s, MicroPython %s" % (payload.get("machine"),
                                             ".".join(map(str, payload.get("version", [])))))
    inst = payload.get("installed")
    if inst:
        print("sipmote   %s (%s) from %s" % (inst["version"], inst["arch"], inst["where"]))
    elif "sipmote" in (payload.get("machine") or ""):
        print("sipmote   frozen into the firmware")
    if payload.get("error"):
        print(payload["error"])
        return 1
    if payload.get("phone") is None:
        print("phone     not running (boot it: sipmote device reset, or at the REPL: "
              "import sipmote_start; sipmote_start.run())")
    return 0


def cmd_repl(args):
    return subprocess.call(mpremote_command("connect", find_port(args.port), "resume", "repl"))


def cmd_reset(args):
    remote = _remote(args)
    remote.run(remote.chain(["reset"]), timeout=30)
    print("reset")


def read_console(port, baud=115200, lines=0, seconds=0, out=None):
    """Print what the board writes to its console; sends nothing (so interrupts nothing)."""
    import serial

    out = out or sys.stdout
    try:
        s = serial.serial_for_url(port, baudrate=baud, timeout=0.2, do_not_open=True)
        s.open()  # DTR and RTS both asserted, as mpremote does: no auto-reset
    except (OSError, serial.SerialException) as e:
        raise DeviceError("cannot open %s: %s" % (port, e)) from None
    count = 0
    deadline = time.monotonic() + seconds if seconds else None
    pending = b""
    try:
        while deadline is None or time.monotonic() < deadline:
            chunk = s.read(256)
            if not chunk:
                continue
            pending += chunk
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                out.write(line.decode("utf-8", "replace").rstrip("\r") + "\n")
                out.flush()
                count += 1
                if lines and count >= lines:
                    return count
            if len(pending) > 4096:  # a console without newlines: print what we have
                out.write(pending.decode("utf-8", "replace"))
                pending = b""
    except KeyboardInterrupt:
        pass
    finally:
        s.close()
    return count


def cmd_logs(args):
    port = find_port(args.port)
    if not args.lines and not args.seconds:
        print("console of %s (Ctrl-C to stop)" % port, file=sys.stderr)
    read_console(port, args.baud, args.lines, args.seconds)


ACTIONS = {
    "ports": cmd_ports, "flash": cmd_flash, "deploy": cmd_deploy, "config": cmd_config,
    "autostart": cmd_autostart, "status": cmd_status, "repl": cmd_repl, "reset": cmd_reset,
    "logs": cmd_logs,
}
