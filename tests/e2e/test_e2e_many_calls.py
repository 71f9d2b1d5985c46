# 50 consecutive calls from one long-running device (the firmware on the MicroPython unix
# port) through the relay (OpenAI backend) to the fake Realtime server, which echoes the
# caller's audio back at once. After each call both sides hold nothing of it (no call,
# media, RTP port or socket, no asyncio task); after all of them, neither the device's live
# heap nor the relay's memory has grown.
#
# Both sides keep each call's SIP transactions for 32 s after it (RFC 3261 timers J, L, M:
# 64*T1, to absorb retransmissions), so memory is compared when none is left: after warm-up
# calls and after the 50 calls, each time once the relay's last transaction has gone (the
# device's expire no later: same timers, started earlier or at the same moment). The
# warm-up fills what is meant to fill: first-call imports and caches, and the device's
# history of its last 8 calls. The relay admits the device by address here: digest would
# add one entry per call to its nonce table, which is bounded (128) but not full by then.
import asyncio
import gc
import logging
import os
import tracemalloc

from e2e import EchoNow, realtime_system

CALLS = 50
WARM_UP = 8
TALK_S = 0.5
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
# what this test itself keeps growing: the device's log lines, the fake server's records,
# tracemalloc's own snapshots
NOT_RELAY = (os.path.join(ROOT, "host_tools", "sipmote", "sim.py"),
             os.path.join(ROOT, "tests", "*"), tracemalloc.__file__)


async def one_call(system, fake, agent, side="device"):
    call = await system.place_call()
    await asyncio.sleep(TALK_S)
    assert call.media.stats["rtp_out"] > 0 and call.media.stats["forwarded"] > 0
    await system.hangup(side)
    await asyncio.wait_for(asyncio.shield(call.ended), 5)
    idle = await system.wait_idle()
    assert fake.invalid == []
    fake.connections.clear()  # the fake server's records of the call (this test's memory)
    agent.open.clear()
    return idle


async def quiet(system, timeout=45.0):
    """Until the relay holds no SIP transaction, then the device's heap and the relay's
    traced memory, each after a full collection."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while system.relay_resources()["sip_transactions"]:
        assert loop.time() < deadline, system.relay_resources()
        await asyncio.sleep(0.25)
    await asyncio.sleep(1.0)
    device = (await system.device_status())["heap"]["used"]  # status() collects first
    gc.collect()
    snapshot = tracemalloc.take_snapshot().filter_traces(
        [tracemalloc.Filter(False, pattern) for pattern in NOT_RELAY])
    return device, snapshot, live_objects()


def live_objects():
    """How many objects of each kind a call creates on the relay side are alive."""
    from openai import AsyncOpenAI
    from websockets.asyncio.client import ClientConnection

    from sipmote.relay.backends.openai import OpenAIRealtimeBackend
    from sipmote.relay.calls import Call
    from sipmote.relay.media import MediaSession

    # (asyncio tasks are counted by LoopbackSystem.wait_idle: gc.freeze() hides the old ones)
    kinds = (Call, MediaSession, OpenAIRealtimeBackend, AsyncOpenAI, ClientConnection)
    counts = dict.fromkeys((k.__name__ for k in kinds), 0)
    for obj in gc.get_objects():
        cls = type(obj)  # not isinstance(): a dead weak proxy raises on that
        for kind in kinds:
            if issubclass(cls, kind):
                counts[kind.__name__] += 1
    return counts


def test_fifty_calls_leave_nothing_behind_and_no_memory_growth(work):
    agent = EchoNow()
    out = {"heap": []}

    async def scenario():
        async with realtime_system(work, agent=agent, tone=440, relay_config={
                "admission": {"allowlist": ["127.0.0.1"]}}) as (system, fake):
            for _ in range(WARM_UP):
                await one_call(system, fake, agent)
            out["before"] = await quiet(system)
            for n in range(CALLS):
                idle = await one_call(system, fake, agent, ("device", "relay")[n % 2])
                out["heap"].append(idle["device"]["heap_used"])
            out["after"] = await quiet(system)
            out["system"] = system

    # pytest's log capture keeps every record a test emits: keep the relay's and the fake
    # server's out of it, or they would count as the relay's memory
    loggers = [logging.getLogger(name) for name in ("sipmote", "fake_realtime", "websockets")]
    saved = [lg.propagate for lg in loggers]
    for lg in loggers:
        lg.propagate = False
    tracemalloc.start(1)
    try:
        asyncio.run(scenario())
    finally:
        tracemalloc.stop()
        for lg, value in zip(loggers, saved):
            lg.propagate = value
    system = out["system"]
    (heap_before, snap_before, objects_before), (heap_after, snap_after, objects_after) = (
        out["before"], out["after"])
    relay_before = sum(stat.size for stat in snap_before.statistics("filename"))
    relay_after = sum(stat.size for stat in snap_after.statistics("filename"))
    growth = [str(stat) for stat in snap_after.compare_to(snap_before, "filename")[:6]]
    print("device live heap: %d B before, %d B after %d calls (%+d); right after each call: %s"
          % (heap_before, heap_after, CALLS, heap_after - heap_before, out["heap"]))
    print("relay traced memory: %d B before, %d B after (%+d); most grown:\n  %s"
          % (relay_before, relay_after, relay_after - relay_before, "\n  ".join(growth)))
    assert system.device_exit == 0
    history = system.device_result["calls"]  # the device keeps the last 8
    assert all(c["answered"] and c["media"]["rx_packets"] > 0 for c in history)
    assert system.device_result["placed"] == CALLS + WARM_UP
    # nothing of any call is alive on the relay side
    assert objects_after == objects_before, (objects_before, objects_after)
    assert objects_after["Call"] == objects_after["MediaSession"] == 0
    # no growth: a leak of even 100 bytes a call would show as 5 kB
    assert heap_after - heap_before <= 2048, (heap_before, heap_after)
    # The relay's process: bounded caches of the stdlib and the SDK still fill (the re
    # module's pattern cache, asyncio's task set): tens of kB, where a leak of the calls'
    # own objects (a session with its buffers is ~100 kB) would be megabytes
    assert relay_after - relay_before <= 96 * 1024, growth
