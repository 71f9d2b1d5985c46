# firmware/manifest.py: what the sipmote firmware freezes, on top of the port's own manifest.
# Board manifests (boards/<name>/manifest.py) include the ESP32 port's manifest, then this.
# Paths are relative to this file. Device code only: nothing from host_tools/.
metadata(
    description="sipmote: an ESP32 SIP phone whose far end is an AI voice agent",
    version="0.1.0",
    license="MIT",
)

# micropython-lib packages the app uses when present: aiorepl gives a REPL while the phone
# runs (phone.app), logging lets phone.log hand lines to handlers. neopixel (the status LED)
# and asyncio already come with the ESP32 port's manifest.
require("aiorepl")
require("logging")

# The shared protocol core and the device app, as the packages they are on the filesystem.
package("voip", base_path="../modules")
package("phone", base_path="../modules")

# Boot: main.py (hands over to a filesystem /main.py if there is one) and the autostart logic.
module("sipmote_start.py")
module("main.py")
