# What every sipmote ESP32 board adds to MicroPython's build, included last by each
# boards/<name>/mpconfigboard.cmake once it has set IDF_TARGET and SDKCONFIG_DEFAULTS.
# MICROPY_BOARD_DIR is still the including board's folder here (include() shares its scope).

# CONFIG_PARTITION_TABLE_CUSTOM_FILENAME is resolved against the port directory, and the port
# copies sdkconfig fragments without expanding variables: write the absolute path to the
# board's CSV into a fragment in the build directory and let it come last.
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
