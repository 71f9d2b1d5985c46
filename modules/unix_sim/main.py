# unix_sim.main: run the phone firmware on the MicroPython unix port (the unix_sim board).
# MIT licence.
#
#   micropython -m unix_sim.main --config FILE [--boards DIR] [--mic WAV | --tone HZ]
#       [--mic-loop] [--speaker WAV] [--control-port N] [--call [URI]] [--duration S]
#       [--exit-after-call] [--exit-on-register-failure] [--heap-stats]
#
# `sipmote sim` (host_tools/sipmote/sim.py) starts this. The last line printed is
#   SIM-RESULT {"exit": N, "reason": "...", "calls": [...], "peak_heap": ...}
# and the exit status is N: 0 success, 1 crash (or no heap to start), 2 bad config/board,
# 3 registration failed, 4 the call failed or carried no audio, 5 --duration ended a call
# still up.
import asyncio
import json
import sys

from phone import app, log
from phone.board import BoardError
from phone.config import ConfigError

from . import board as sim_board

_USAGE = "usage: micropython -m unix_sim.main --config FILE [options]"
# Bytes of a ROMFS code image mounted by a bootstrap (sipmote sim --romfs): it sits in this
# heap only because the unix port has no flash; the result reports it so it can be subtracted.
CODE_IMAGE_BYTES = 0


def parse_args(argv):
    opts = {"config": None, "boards": None, "mic": None, "tone": 0, "mic_loop": False,
            "speaker": None, "control_port": 0, "call": None, "duration": 0,
            "exit_after_call": False, "exit_on_register_failure": False, "heap_stats": False}
    i = 0
    flags = {"--mic-loop": "mic_loop", "--exit-after-call": "exit_after_call",
             "--exit-on-register-failure": "exit_on_register_failure",
             "--heap-stats": "heap_stats"}
    values = {"--config": "config", "--boards": "boards", "--mic": "mic", "--tone": "tone",
              "--speaker": "speaker", "--control-port": "control_port",
              "--duration": "duration"}
    while i < len(argv):
        a = argv[i]
        if a in flags:
            opts[flags[a]] = True
        elif a == "--call":
            # optional URI
            if i + 1 < len(argv) and not argv[i + 1].startswith("--"):
                opts["call"] = argv[i + 1]
                i += 1
            else:
                opts["call"] = ""
        elif a in values and i + 1 < len(argv):
            key = values[a]
            v = argv[i + 1]
            opts[key] = int(v) if key in ("tone", "control_port", "duration") else v
            i += 1
        else:
            raise ValueError("unknown or incomplete option %r" % a)
        i += 1
    if not opts["config"]:
        raise ValueError("--config is required")
    return opts


def _track_heap(state, phone, live):
    """Peak of gc.mem_alloc() sampled every 100 ms (garbage included). With live=True, also
    collect once a second and keep the peak of what survives (the live heap) before the first
    call and during calls: what a board's heap must hold."""
    import gc

    async def watch():
        tick = 0
        while True:
            used = gc.mem_alloc()
            if used > state["peak"]:
                state["peak"] = used
            tick += 1
            if live and tick % 10 == 0:
                gc.collect()
                used = gc.mem_alloc()
                key = None
                if phone.media is not None:
                    key = "live_in_call"
                elif not phone.calls_placed and not phone.calls_answered:
                    key = "live_before_call"
                if key is not None and used > state.get(key, 0):
                    state[key] = used
            await asyncio.sleep_ms(100)

    return watch()


async def _stop_after(phone, seconds):
    await asyncio.sleep_ms(seconds * 1000)
    if phone.call is not None:
        phone.finish(5, "duration reached during a call (%s)" % phone.call.state)
    else:
        phone.finish(0, "duration reached")


def main(argv):
    try:
        opts = parse_args(argv)
    except ValueError as e:
        print("sim: %s\n%s" % (e, _USAGE))
        return 2
    options = {"exit_after_call": opts["exit_after_call"],
               "exit_on_register_failure": opts["exit_on_register_failure"]}
    if opts["call"] is not None:
        options["call_pending"] = True
        options["call_target"] = opts["call"] or None
    dirs = (opts["boards"],) if opts["boards"] else None
    try:
        phone = app.build(opts["config"], dirs, options)
        if not phone.board.sim:
            raise BoardError("board error: %s is not a simulator board" % phone.board.name)
        mic = phone.board.profile["mic"]
        sim_board.configure(mic_wav=opts["mic"], speaker_wav=opts["speaker"],
                            tone_hz=opts["tone"], loop=opts["mic_loop"],
                            mic_rate=16000 if mic["type"] == "pdm" else mic["rate"],
                            speaker_rate=phone.board.profile["speaker"]["rate"])
    except (ConfigError, BoardError, OSError, ValueError) as e:
        print("sim: %s" % e)
        print("SIM-RESULT " + json.dumps({"exit": 2, "reason": str(e)}))
        return 2
    except MemoryError as e:  # the heap cannot hold the phone (-X heapsize too small)
        log.exception("sim", "out of memory starting the phone", e)
        print("SIM-RESULT " + json.dumps({"exit": 1, "reason": "out of memory at start"}))
        return 1
    heap = {"peak": 0}
    extra = [_track_heap(heap, phone, opts["heap_stats"])]
    if opts["control_port"]:
        from .control import ControlPort

        extra.append(ControlPort(phone, opts["control_port"]).run())
    if opts["duration"]:
        extra.append(_stop_after(phone, opts["duration"]))
    phone.options["extra_tasks"] = extra
    code = 1
    reason = "crashed"
    try:
        code = asyncio.run(phone.run())
        reason = phone.exit_reason
    except KeyboardInterrupt:
        code, reason = 130, "interrupted"
    except Exception as e:  # noqa: BLE001 - reported, with its traceback, as exit 1
        log.exception("sim", "the phone crashed", e)
    finally:
        sim_board.shutdown()
    result = {"exit": code, "reason": reason, "calls": phone.history,
              "placed": phone.calls_placed, "answered": phone.calls_answered,
              "rejected": phone.calls_rejected, "peak_heap": heap["peak"],
              "live_heap_before_call": heap.get("live_before_call"),
              "live_heap_in_call": heap.get("live_in_call"),
              "code_image_bytes": CODE_IMAGE_BYTES,
              "speaker_underruns": sim_board.speaker.underruns,
              "wav_epochs_ticks_us": sim_board.epochs_ticks_us()}
    print("SIM-RESULT " + json.dumps(result))
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
