// sipmote firmware for a generic ESP32-WROOM-32 DevKit. os.uname().machine names the board,
// which is how `sipmote device` tells this firmware (frozen app) from stock MicroPython.
#define MICROPY_HW_BOARD_NAME               "sipmote ESP32 DevKit"
#define MICROPY_HW_MCU_NAME                 "ESP32"

// The phone uses Wi-Fi only (see mpconfigboard.cmake: no sdkconfig.ble).
#define MICROPY_PY_BLUETOOTH                (0)
