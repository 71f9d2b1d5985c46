"""Soak runs: many sequential calls, and what each side holds from the first to the last.

    device_soak(workdir, calls=300)    # device -> relay (digest, OpenAI backend) -> fake AI
    relay_soak(workdir, calls=200)     # SIPp -> `sipmote relay` (digest, echo agent)

device_soak runs the whole system as tests/lib/e2e.py starts it (sipmote.loopback: the relay in
this process, the firmware on the MicroPython unix port, the fake Realtime server answering
every append with the same audio). After every call it waits until neither side holds
anything of it (LoopbackSystem.wait_idle: no call, media, RTP port or socket, no asyncio task
beyond an idle relay's) and records the device's live heap, its sockets, this process's
fds and RSS. Every `checkpoint` calls it also waits until the relay holds no SIP transaction
(they live 32 s after a call, RFC 3261 timers J/L/M), then takes the device's live heap, the
relay's memory as tracemalloc sees it (what this harness keeps is left out) and the relay's
objects (calls, media sessions, backends, WebSocket clients, tasks) still alive.

The device registers nothing and admission is by digest, as a deployment has it: each call
leaves a nonce in the relay's bounded nonce-count table (128), so relay memory may grow until
that table is full and must be flat after; checkpoints start after the warm-up.

relay_soak runs the real `sipmote relay` command as its own process and SIPp in batches of
sequential digest calls with RTP; after each batch it records the relay process' RSS, open
fds and sockets (/proc/<pid>) and its status (calls, RTP ports in use).
"""

import asyncio
import gc
import os
import subprocess
import sys
import time
import tracemalloc

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
# the relay as its operator runs it: tests/security/security_peers.LoopbackRelay
if os.path.join(ROOT, "tests", "security") not in sys.path:
    sys.path.append(os.path.join(ROOT, "tests", "security"))
NOT_RELAY = (os.path.join(ROOT, "host_tools", "sipmote", "sim.py"),
             os.path.join(ROOT, "tests", "*"), "<frozen *>", "*tracemalloc*")


def proc_figures(pid="self"):
    """RSS (KiB), open fds and sockets of a process."""
    rss = None
    with open("/proc/%s/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    fds = sockets = 0
    for name in os.listdir("/proc/%s/fd" % pid):
        fds += 1
        try:
            if os.readlink("/proc/%s/fd/%s" % (pid, name)).startswith("socket:"):
                sockets += 1
        except OSError:
            pass
    return {"rss_kib": rss, "fds": fds, "sockets": sockets}


def live_relay_objects():
    from openai import AsyncOpenAI
    from websockets.asyncio.client import ClientConnection

    from sipmote.relay.backends.openai import OpenAIRealtimeBackend
    from sipmote.relay.calls import Call
    from sipmote.relay.media import MediaSession

    kinds = (Call, MediaSession, OpenAIRealtimeBackend, AsyncOpenAI, ClientConnection,
             asyncio.Task)
    counts = dict.fromkeys((k.__name__ for k in kinds), 0)
    for obj in gc.get_objects():
        cls = type(obj)
        for kind in kinds:
            if issubclass(cls, kind):
                counts[kind.__name__] += 1
    return counts


async def _quiet(system, timeout=60.0):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while system.relay_resources()["sip_transactions"]:
        if loop.time() > deadline:
            raise AssertionError("relay transactions never expired: %s"
                                 % system.relay_resources())
        await asyncio.sleep(0.25)
    await asyncio.sleep(1.0)  # the device's (same timers, started no later) are gone too
    device = await system.device_status()  # the device collects before it answers
    gc.collect()
    snap = tracemalloc.take_snapshot().filter_traces(
        [tracemalloc.Filter(False, p) for p in NOT_RELAY])
    return {"device_heap": device["heap"]["used"],
            "relay_traced": sum(s.size for s in snap.statistics("filename")),
            "relay_objects": live_relay_objects(), **proc_figures()}


async def _one_call(system, fake, agent, talk_s, side):
    call = await system.place_call()
    await asyncio.sleep(talk_s)
    stats = call.media.stats
    carried = stats["rtp_out"] > 0 and stats["forwarded"] > 0
    await system.hangup(side)
    await asyncio.wait_for(asyncio.shield(call.ended), 10)
    idle = await system.wait_idle(timeout=15)
    if fake.invalid:
        raise AssertionError("invalid client events: %s" % fake.invalid[:3])
    fake.connections.clear()  # the fake server's own records (not the relay's memory)
    agent.open.clear()
    return carried, idle


def device_soak(workdir, calls=300, warmup=140, checkpoint=80, talk_s=0.4, report=print):
    """Returns {"samples": [per call], "checkpoints": [(calls done, figures)], "system"}."""
    from e2e import EchoNow, realtime_system

    agent = EchoNow()
    out = {"samples": [], "checkpoints": []}

    async def scenario():
        async with realtime_system(workdir, agent=agent, tone=440) as (system, fake):
            t0 = time.monotonic()
            for n in range(1, calls + 1):
                side = "device" if n % 2 else "relay"
                carried, idle = await _one_call(system, fake, agent, talk_s, side)
                sample = {"call": n, "carried": carried,
                          "device_heap": idle["device"]["heap_used"],
                          "device_sockets": idle["device"]["sockets"],
                          "relay_fds": idle["relay"]["fds"],
                          "rtp_ports": idle["relay"]["rtp_ports_in_use"],
                          "tasks": len(idle["relay"]["extra_tasks"]), **proc_figures()}
                out["samples"].append(sample)
                if n in (warmup, calls) or (n > warmup and (n - warmup) % checkpoint == 0):
                    figures = await _quiet(system)
                    out["checkpoints"].append((n, figures))
                    report("after %4d calls (%4.0f s): device live heap %6d B, relay traced "
                           "%8d B, RSS %6d KiB, fds %d (sockets %d), live relay objects %s"
                           % (n, time.monotonic() - t0, figures["device_heap"],
                              figures["relay_traced"], figures["rss_kib"], figures["fds"],
                              figures["sockets"], figures["relay_objects"]))
            out["system"] = system

    tracemalloc.start(1)
    try:
        asyncio.run(scenario())
    finally:
        tracemalloc.stop()
    return out


def relay_soak(workdir, calls=200, batch=20, warmup=20, quiet_s=0.0, report=print):
    """SIPp batches against `sipmote relay` in its own process; returns the per-batch
    figures [(calls done, figures)] and SIPp's failed-call count. With quiet_s, the figures
    after the warm-up and after the last batch are taken that long after the calls (34 s:
    the SIP transactions of the last calls have expired)."""
    import security_peers  # the relay as its operator runs it
    from netlab_calls import SIPP_SCENARIO, caller_audio

    os.makedirs(workdir, exist_ok=True)
    audio = os.path.join(workdir, "caller.pcmu")
    with open(audio, "wb") as f:
        f.write(caller_audio(0.6))
    out = {"batches": [], "failed": 0}

    async def scenario():
        async with security_peers.LoopbackRelay(workdir, level="info") as relay:
            done = 0
            while done < calls:
                n = warmup if done == 0 else min(batch, calls - done)
                failed = await _sipp_batch(relay, SIPP_SCENARIO, audio, n, workdir, done)
                out["failed"] += failed
                done += n
                await _idle_status(relay)
                if quiet_s and (done == warmup or done >= calls):
                    await asyncio.sleep(quiet_s)
                await asyncio.sleep(0.2)  # the status connection is closed by now
                figures = proc_figures(relay.proc.pid)  # before the next status connection
                status = await relay.status()
                figures.update(calls=len(status["calls"]), rtp_ports=status["rtp_ports_in_use"],
                               admitted=status["admission"]["admitted"])
                out["batches"].append((done, figures))
                report("after %4d calls: relay RSS %6d KiB, fds %3d, sockets %3d, calls %d, "
                       "RTP ports in use %d, admitted %d, SIPp failures so far %d"
                       % (done, figures["rss_kib"], figures["fds"], figures["sockets"],
                          figures["calls"], figures["rtp_ports"], figures["admitted"],
                          out["failed"]))

    asyncio.run(scenario())
    return out


async def _idle_status(relay, timeout=15.0):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        status = await relay.status()
        if (not status["calls"] and not status["rtp_ports_in_use"]) or loop.time() > deadline:
            return status
        await asyncio.sleep(0.1)


async def _sipp_batch(relay, scenario, audio, n, workdir, done):
    import security_peers

    port = security_peers.free_port()
    stat = os.path.join(workdir, "sipp-stat-%d.csv" % done)
    argv = ["sipp", relay.address, "-sf", scenario, "-i", "127.0.0.1",
            "-p", str(port), "-mp", str(security_peers.free_port()), "-mi", "127.0.0.1",
            "-m", str(n), "-l", "1", "-r", "50", "-nostdin", "-timeout", "%ds" % (30 + 3 * n),
            "-timeout_error", "-max_recv_loops", "100",
            "-key", "stream", "%s,1,0,PCMU/8000" % audio, "-key", "pt", "0",
            "-key", "codec", "PCMU/8000", "-key", "caller", "kitchen",
            "-s", "assistant", "-au", "kitchen", "-ap", relay.password, "-d", "800",
            "-trace_stat", "-stf", stat]
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=workdir)
    await asyncio.wait_for(proc.wait(), 60 + 5 * n)
    if proc.returncode not in (0, 1):  # 1: some calls failed (counted below)
        raise AssertionError("sipp exited %d" % proc.returncode)
    return _failed_calls(stat)


def _failed_calls(stat_path):
    """SIPp's cumulative failed-call count from the last line of its -trace_stat file."""
    try:
        with open(stat_path) as f:
            lines = f.read().strip().splitlines()
    except OSError:
        return 0
    if len(lines) < 2:
        return 0
    head = lines[0].split(";")
    last = lines[-1].split(";")
    try:
        return int(last[head.index("FailedCall(C)")])
    except (ValueError, IndexError):
        return 0
