# unix_sim: the simulator board the phone firmware runs on with the MicroPython unix port.
# MIT licence.
# board: the `machine` stand-in (I2S over WAV files paced like DMA, Pin, NeoPixel); main: the
# entry point `sipmote sim` starts (micropython -m unix_sim.main); control: its UDP control
# port; wav: WAV files in place. Never part of a board's firmware, bundle or ROMFS image: only
# the unix port's (x64) bundle carries it (firmware/unix_sim_manifest.py).
