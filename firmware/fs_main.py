# main.py for a stock MicroPython board: `sipmote device deploy` copies it to /main.py when
# the board has none. MIT licence.
#
# It is yours to edit: sipmote_start.run() boots the phone unless /noautostart exists or the
# button is held at boot (see docs/flashing.md); delete this file to stop the phone starting.
import sipmote_start

sipmote_start.run()
