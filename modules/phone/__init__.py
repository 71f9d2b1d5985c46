# phone: the sipmote device app (MicroPython: ESP32 and the unix port). MIT licence.
# Entry point: phone.app.main(config_path). The protocol core lives in voip/; this package is
# the shell that owns sockets, clocks, I2S, Wi-Fi, buttons and LEDs.
