"""Find the serial port of the board: --port, $SIPMOTE_PORT, or the one USB serial port there.

Auto-detection looks at USB serial ports only (pyserial's list; a port with a USB vendor id),
prefers the bridges ESP32 boards carry, and refuses to guess between two boards.
"""

import os

from . import DeviceError

# USB vendor/product ids of the serial bridges on ESP32 boards.
KNOWN_BRIDGES = {
    (0x10C4, 0xEA60): "Silicon Labs CP210x (ESP32 DevKits, ESP32-S3-DevKitC-1 UART port)",
    (0x1A86, 0x7523): "WCH CH340",
    (0x1A86, 0x55D4): "WCH CH9102 / CH343",
    (0x0403, 0x6001): "FTDI FT232R",
    (0x0403, 0x6015): "FTDI FT231X (M5Stack Atom)",
    (0x303A, 0x1001): "Espressif USB Serial/JTAG (ESP32-S3/C3 native USB)",
    (0x303A, 0x4001): "MicroPython on native USB (ESP32-S2/S3)",
}

NO_BOARD_HELP = (
    "no board found: no USB serial port is attached.\n"
    "  - plug the board in with a data cable (charge-only cables carry no data);\n"
    "  - on Linux, your user needs the dialout group (sudo usermod -aG dialout $USER, then log"
    " in again);\n"
    "  - or name the port: --port /dev/ttyUSB0 (or set SIPMOTE_PORT)"
)


def _comports():
    from serial.tools import list_ports

    return list_ports.comports()


def describe(p):
    known = KNOWN_BRIDGES.get((p.vid, p.pid))
    return "%s  %04x:%04x  %s" % (p.device, p.vid or 0, p.pid or 0, known or p.description)


def usb_ports(lister=_comports):
    return sorted((p for p in lister() if p.vid is not None), key=lambda p: p.device)


def find_port(explicit=None, lister=_comports, env=None):
    """The port to use; DeviceError says why none can be chosen and what to do."""
    env = os.environ if env is None else env
    port = explicit or env.get("SIPMOTE_PORT")
    if port:
        local = port.startswith("/dev/")
        if local and not os.path.exists(port):
            found = usb_ports(lister)
            listing = "".join("\n  " + describe(p) for p in found) or " none"
            raise DeviceError("no serial port %s: is the board plugged in? USB serial ports "
                              "here:%s" % (port, listing))
        return port
    found = usb_ports(lister)
    if not found:
        raise DeviceError(NO_BOARD_HELP)
    known = [p for p in found if (p.vid, p.pid) in KNOWN_BRIDGES]
    if len(found) == 1:
        return found[0].device
    if len(known) == 1:
        return known[0].device
    raise DeviceError("%d USB serial ports; say which board with --port:%s" % (
        len(found), "".join("\n  " + describe(p) for p in found)))
