# sipmote firmware for the ESP32-S3-DevKitC-1 N8 / N8R2 (8 MB flash, none or 2 MB quad PSRAM).
# Out-of-tree MicroPython board: make -C $MICROPY_DIR/ports/esp32 BOARD_DIR=<this directory>
set(IDF_TARGET esp32s3)

# As the port's ESP32_GENERIC_S3 (native USB REPL, quad PSRAM used when fitted), without
# Bluetooth: the phone never uses it. N8R8 boards (octal PSRAM) boot too, without PSRAM.
set(SDKCONFIG_DEFAULTS
    boards/sdkconfig.base
    ${SDKCONFIG_IDF_VERSION_SPECIFIC}
    boards/sdkconfig.usb
    boards/sdkconfig.spiram_sx
    ${MICROPY_BOARD_DIR}/sdkconfig.board
)

# The partition table, the frozen manifest and ROMFS: the same on every sipmote board.
include(${MICROPY_BOARD_DIR}/../common.cmake)
