# Frozen modules of the sipmote ESP32-S3-DevKitC-1 firmware: the ESP32 port's own set
# (_boot, asyncio, neopixel, ...) and sipmote's (firmware/manifest.py).
include("$(PORT_DIR)/boards/manifest.py")
include("$(BOARD_DIR)/../../firmware/manifest.py")
