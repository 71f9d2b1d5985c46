# sipmote firmware for the M5Stack Atom Echo (ESP32-PICO-D4, 4 MB flash, no PSRAM).
# Out-of-tree MicroPython board: make -C $MICROPY_DIR/ports/esp32 BOARD_DIR=<this directory>
set(IDF_TARGET esp32)

# The port's base settings, then this board's (flash size, partition table). No Bluetooth:
# the phone never uses it, and leaving NimBLE out keeps the image well inside its partition.
set(SDKCONFIG_DEFAULTS
    boards/sdkconfig.base
    ${SDKCONFIG_IDF_VERSION_SPECIFIC}
    ${MICROPY_BOARD_DIR}/sdkconfig.board
)

# The partition table, the frozen manifest and ROMFS: the same on every sipmote board.
include(${MICROPY_BOARD_DIR}/../common.cmake)
