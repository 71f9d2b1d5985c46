# SIPVicious against the simulated device (the firmware on the MicroPython unix port, started
# by sipmote.loopback with the relay it calls): from 127.0.0.2, an address that is not its
# relay, registrar or allowlist, svmap finds nothing, svwar (INVITE and OPTIONS) finds nothing
# and rings nothing; the same svmap from the relay's address 127.0.0.1 does find it (so the
# scan itself works). The device counts what it dropped.
import asyncio

from security_peers import sipvicious
from simdevice import require_micropython


def rows(output):
    return [line for line in output.splitlines()
            if line.startswith("| ") and not line.startswith(("| SIP Device", "| Extension"))]


def test_device_answers_nothing_to_a_stranger(tmp_path):
    require_micropython()
    from sipmote.loopback import LoopbackSystem

    async def main():
        async with LoopbackSystem(str(tmp_path), "echo", tone=440) as system:
            target = "127.0.0.1:%d" % system.device_cfg["sip"]["local_port"]
            since = system.line_count()
            out = {}
            out["svmap stranger"] = await sipvicious("svmap", [], target, tmp_path,
                                                     source="127.0.0.2", timeout=60)
            for method in ("INVITE", "OPTIONS"):
                out["svwar %s stranger" % method] = await sipvicious(
                    "svwar", ["--force", "-m", method, "-e100-120", "--maximumtime", "3"],
                    target, tmp_path, source="127.0.0.2", timeout=60)
            out["svmap relay"] = await sipvicious("svmap", [], target, tmp_path,
                                                  source="127.0.0.1", timeout=60)
            status = await system.device_status()
            lines = system.device.lines[since:]
            return out, status, lines

    out, status, lines = asyncio.run(main())
    stats = (status.get("sip") or {}).get("stats") or {}
    print("\n" + "; ".join("%s: %d found" % (k, len(rows(v[1]))) for k, v in out.items())
          + "; the device dropped %s requests" % stats.get("blocked"))
    for name in ("svmap stranger", "svwar INVITE stranger", "svwar OPTIONS stranger"):
        assert rows(out[name][1]) == [], (name, out[name][1])
    assert len(rows(out["svmap relay"][1])) == 1, out["svmap relay"][1]
    assert not any("incoming call" in line for line in lines), lines
    # svmap's probe and each svwar's first probes were dropped (svwar gives up on silence)
    assert stats.get("blocked", 0) >= 3, status
