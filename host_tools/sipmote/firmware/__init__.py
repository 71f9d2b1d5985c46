"""Firmware builds and deployment for sipmote boards (host side).

- ``boards``: what each boards/<name>/ says (chip, native-code arch, flash size, partitions),
  the esptool offset of a firmware image;
- ``manifests``: evaluates MicroPython manifest.py files (firmware/, boards/);
- ``bundle``: cross-compiles the device modules to versioned .mpy bundles and ROMFS images;
- ``build``: ``make firmware`` (MicroPython + ESP-IDF when present, else what to install);
- ``typecheck``: mypy over the device app against the ESP32 port's stubs.

``python -m sipmote.firmware`` is what the Makefile calls.
"""

import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__)))))
MODULES = os.path.join(ROOT, "modules")
BOARDS = os.path.join(ROOT, "boards")
FIRMWARE = os.path.join(ROOT, "firmware")
BUILD = os.path.join(ROOT, "build")


class FirmwareError(Exception):
    """A build or deployment step cannot go on; the message says why and what to do."""
