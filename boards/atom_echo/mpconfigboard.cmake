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
