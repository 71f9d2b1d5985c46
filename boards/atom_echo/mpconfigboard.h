// sipmote firmware for the M5Stack Atom Echo. os.uname().machine names the board, which is
// how `sipmote device` tells this firmware (frozen app) from stock MicroPython.
#define MICROPY_HW_BOARD_NAME               "sipmote M5Stack Atom Echo"
#define MICROPY_HW_MCU_NAME                 "ESP32-PICO-D4"

// The phone uses Wi-Fi only (see mpconfigboard.cmake: no sdkconfig.ble).
#define MICROPY_PY_BLUETOOTH                (0)
