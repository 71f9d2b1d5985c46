# tests/bench/device_probe.py: device-side figures, measured under the MicroPython unix port
# (bench_device.py runs it). Prints one JSON object. MIT licence.
#   - per-frame cost of each audio path: the viper kernels and their plain-Python reference
#     (phone._audio_ref, the same integer results) on the same buffers;
#   - a steady-state call on the unix_sim board (phone.media.MediaSession against a loopback
#     far end in the same asyncio loop): bytes allocated per frame (collector off) and CPU
#     time per 20 ms frame as MediaSession measures it.
import asyncio
import gc
import json
import os
import struct
import sys
import time

from phone import _audio_ref, audio, media, net
from phone.board import Board, load_profile
from unix_sim import board as sim_board
from voip.sdp import Media, SessionDescription

BOARDS = sys.argv[1] if len(sys.argv) > 1 else "boards"
FRAMES = 500


def per_frame_us(fn, n):
    t0 = time.ticks_us()
    for _ in range(n):
        fn()
    return time.ticks_diff(time.ticks_us(), t0) / n


def kernels(out):
    up = audio.Uplink({"type": "i2s", "rate": 16000}, 6)
    pdm = audio.Uplink({"type": "pdm"}, 0)
    down = audio.Downlink({"rate": 16000, "format": "mono"}, 0)
    up.raw[:] = os.urandom(len(up.raw))
    pdm.raw[:] = os.urandom(len(pdm.raw))
    down.inp[:] = os.urandom(len(down.inp))
    out["uplink_i2s_us"] = per_frame_us(up.process, 200)
    out["uplink_pdm_us"] = per_frame_us(pdm.process, 100)
    out["downlink_us"] = per_frame_us(down.process, 200)

    def ref_up():
        _audio_ref.i2s32_to_pcm16(up.raw, up.pcm, 320, 256, up.state)
        _audio_ref.decimate2(up.ext, up.out, 160, audio.HALFBAND, 10)

    def ref_pdm():
        _audio_ref.pdm_to_pcm16(pdm.raw, pdm.pcm, 320, audio.CIC3, audio.POPCOUNT, 256,
                                pdm.state)
        _audio_ref.decimate2(pdm.ext, pdm.out, 160, audio.HALFBAND, 10)

    def ref_down():
        _audio_ref.mean_abs16(down.inp, 160)
        _audio_ref.interpolate2(down.ext, down.out, 160, audio.HALFBAND, 10)

    out["uplink_i2s_python_us"] = per_frame_us(ref_up, 5)
    out["uplink_pdm_python_us"] = per_frame_us(ref_pdm, 2)
    out["downlink_python_us"] = per_frame_us(ref_down, 5)


def call(out):
    sim_board.configure(tone_hz=600)
    board = Board(load_profile("unix_sim", (BOARDS,)))
    cfg = {"mic_gain_db": 0, "speaker_gain_db": 0, "echo_guard": True, "echo_guard_db": 18,
           "echo_guard_threshold": 300, "echo_guard_hangover_ms": 200, "jitter_ms": 60}
    s = media.MediaSession(board, cfg, "127.0.0.1", 41100)
    sdp = SessionDescription.parse(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        "m=audio 41110 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n")
    s.start(Media(0, sdp.media[0], 0, "PCMU", "sendrecv", False))
    far = net.udp_socket("127.0.0.1", 41110)
    far.connect(net.sockaddr("127.0.0.1", 41100))
    pkt = bytearray(172)
    rx = bytearray(512)

    async def far_end(n):
        for seq in range(n):
            struct.pack_into(">BBHII", pkt, 0, 0x80, 0, seq, seq * 160, 7)
            far.write(pkt)
            while far.readinto(rx):
                pass
            await asyncio.sleep_ms(20)

    async def main():
        dma = asyncio.create_task(sim_board.dma_task())
        task = asyncio.create_task(s.run())
        await far_end(25)
        frames0, cpu0 = s.frames, s.cpu_ms * 1000 + s.cpu_us
        steady = far_end(FRAMES // 2)
        gc.collect()
        gc.disable()
        before = gc.mem_alloc()
        await steady
        allocated = gc.mem_alloc() - before
        gc.enable()
        frames = s.frames - frames0
        cpu = s.cpu_ms * 1000 + s.cpu_us - cpu0
        s.running = False
        await task
        dma.cancel()
        return allocated, frames, cpu

    allocated, frames, cpu = asyncio.run(main())
    out["call_frames"] = frames
    out["call_bytes_allocated"] = allocated
    out["call_cpu_us_per_frame"] = cpu / frames if frames else None
    out["call_rx_packets"] = s.rx_packets
    out["call_tx_packets"] = s.tx_packets


result = {"kernels": audio.KERNELS}
kernels(result)
call(result)
print(json.dumps(result))
