// sipmote firmware for the ESP32-S3-DevKitC-1. os.uname().machine names the board, which is
// how `sipmote device` tells this firmware (frozen app) from stock MicroPython.
#define MICROPY_HW_BOARD_NAME               "sipmote ESP32-S3-DevKitC-1"
#define MICROPY_HW_MCU_NAME                 "ESP32S3"

// The REPL on both connectors: native USB (sdkconfig.usb) and the UART bridge's.
#define MICROPY_HW_ENABLE_UART_REPL         (1)

// The phone uses Wi-Fi only (see mpconfigboard.cmake: no sdkconfig.ble).
#define MICROPY_PY_BLUETOOTH                (0)
