"""`sipmote device`: flash, deploy, configure and watch a board over its USB serial port.

Thin wrappers over esptool (flashing) and mpremote (everything else), run as subprocesses
so their own progress output reaches the terminal. ``ports`` finds the board's serial port,
``remote`` builds and runs the mpremote command lines, ``config_edit`` edits the device's JSON
config with secrets masked, ``deploy`` copies bundles or ROMFS images, ``command`` is the CLI.
"""


class DeviceError(Exception):
    """The board cannot be reached or refused a step; the message says what to do."""
