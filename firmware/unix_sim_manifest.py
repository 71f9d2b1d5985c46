# firmware/unix_sim_manifest.py: what the unix port's bundle (make bundle ARCH=x64) holds: the
# firmware's modules (manifest.py) and the simulator board they run on there (unix_sim: the
# `machine` stand-in, its entry point, control port and WAV files). ESP32 firmware, bundles,
# ROMFS images and package.json are built from manifest.py alone and never carry unix_sim.
include("manifest.py")
package("unix_sim", base_path="../modules")
