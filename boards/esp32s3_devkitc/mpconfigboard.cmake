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

# CONFIG_PARTITION_TABLE_CUSTOM_FILENAME is resolved against the port directory, and the port
# copies sdkconfig fragments without expanding variables: write the absolute path to our CSV
# into a fragment in the build directory and let it come last.
file(WRITE ${CMAKE_BINARY_DIR}/sdkconfig.sipmote_partitions
    "CONFIG_PARTITION_TABLE_CUSTOM=y\nCONFIG_PARTITION_TABLE_CUSTOM_FILENAME=\"${MICROPY_BOARD_DIR}/partitions.csv\"\n")
list(APPEND SDKCONFIG_DEFAULTS ${CMAKE_BINARY_DIR}/sdkconfig.sipmote_partitions)

set(MICROPY_FROZEN_MANIFEST ${MICROPY_BOARD_DIR}/manifest.py)

# ROMFS: execute-in-place .mpy from the "romfs" partition, mounted at /rom and put ahead of
# the frozen modules on sys.path, so `sipmote device deploy --romfs` updates the app without
# reflashing.
list(APPEND MICROPY_DEF_BOARD
    MICROPY_VFS_ROM=1
)
