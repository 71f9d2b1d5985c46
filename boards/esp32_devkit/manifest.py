# Frozen modules of the sipmote ESP32 DevKit firmware: the ESP32 port's own set (_boot, asyncio,
# neopixel, ...) and sipmote's (firmware/manifest.py).
include("$(PORT_DIR)/boards/manifest.py")
include("$(BOARD_DIR)/../../firmware/manifest.py")
