"""The relay's media half under N simultaneous calls: added latency per frame, late frames, CPU.

This process runs N MediaSessions with the OpenAI backend, exactly as the relay does. A load
generator subprocess (the other core) runs the fake Realtime server (tests/host/fake_realtime.py)
and N callers on loopback UDP: each caller sends a 20 ms G.711 frame every 20 ms (start times
spread over the frame), each WebSocket gets an agent response of 800 ms of audio every second,
in bursts of 2400/1200/800 bytes as the real service sends it. Measured inside the relay:

- in  = RTP datagram received -> its input_audio_buffer.append written to the WebSocket;
- out = response.output_audio.delta received -> its RTP packet sent, minus the time the audio
        waited for its slot on the 20 ms pacing clock (the pacing itself is not latency);
- late = RTP packets sent more than 10 ms after their deadline; CPU = this process's CPU time
  over wall time (100 % = one core).

N goes 1, 10, 25, 50, 100, 150, 200, 300 while p99 of both stays <= 5 ms and the budget lasts;
the figure that matters is the largest N that held. A step over the limit is run once more
before giving up (the two cores are shared with the load generator and whatever else runs):
the report shows both. The fake server's event validation is off
here (the tests do it): the load generator must not be the bottleneck.
``python tests/bench/bench_relay.py`` runs it alone.
"""

import asyncio
import gc
import json
import os
import random
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
for _path in (os.path.join(ROOT, "modules"), os.path.join(ROOT, "tests", "host")):
    if _path not in sys.path:
        sys.path.insert(0, _path)

STEPS = (1, 10, 25, 50, 100, 150, 200, 300)
MEASURE_S = 4.0
WARMUP_S = 1.0
BUDGET_S = 50.0
LIMIT_MS = 5.0
RESPONSE_BYTES = 6400  # 800 ms of G.711
RESPONSE_EVERY_S = 1.0
BURSTS = (2400, 1200, 800)


# -- load generator (subprocess): fake Realtime server + N RTP callers --------------------------


async def _loadgen():
    from fake_realtime import FakeRealtimeServer
    from rtp_peer import RtpPeer

    server = await FakeRealtimeServer(validate=False).start()
    gc.collect()
    gc.freeze()  # no 40 ms collector pauses here either: they would send bursts to the relay
    reader = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    def say(obj):
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

    say({"url": server.url})
    peers, tasks = [], []
    while True:
        line = await reader.readline()
        if not line:
            break
        cmd = json.loads(line)
        if cmd["cmd"] == "peers":
            peers = [await RtpPeer.open() for _ in range(cmd["n"])]
            for p in peers:
                p.on_packet = lambda packet: None
            first = len(server.connections)
            say({"addrs": [p.address for p in peers], "first": first})
        elif cmd["cmd"] == "go":
            conns = server.connections[cmd["first"] :]
            for peer, port in zip(peers, cmd["ports"]):
                peer.dest = ("127.0.0.1", port)
            cpu0, t0 = time.process_time(), time.monotonic()
            tasks = [asyncio.ensure_future(_caller(p)) for p in peers]
            tasks += [asyncio.ensure_future(_agent(c)) for c in conns]
            await asyncio.sleep(cmd["seconds"])
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            cpu = (time.process_time() - cpu0) / (time.monotonic() - t0) * 100
            say({"received": sum(len(p.received) for p in peers),
                 "appends": sum(len(c.appends) for c in conns), "cpu": cpu})
            for p in peers:
                p.close()
        elif cmd["cmd"] == "quit":
            break
    await server.stop()


async def _caller(peer):
    frame = bytes(range(1, 161))
    await asyncio.sleep(random.random() * 0.02)
    loop = asyncio.get_running_loop()
    deadline = loop.time()
    while True:
        peer.send(frame)
        deadline += 0.02
        await asyncio.sleep(max(0.0, deadline - loop.time()))


async def _agent(conn):
    audio = bytes(range(1, 201)) * (RESPONSE_BYTES // 200)
    await asyncio.sleep(random.random() * RESPONSE_EVERY_S)
    loop = asyncio.get_running_loop()
    deadline = loop.time()
    while True:
        await conn.respond(audio, chunk_sizes=BURSTS)
        deadline += RESPONSE_EVERY_S
        await asyncio.sleep(max(0.0, deadline - loop.time()))


# -- the relay side (this process) --------------------------------------------------------------


class _Loadgen:
    async def start(self):
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, os.path.abspath(__file__), "--loadgen",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        return (await self.read())["url"]

    async def read(self):
        line = await asyncio.wait_for(self.proc.stdout.readline(), 30)
        if not line:
            raise RuntimeError("load generator exited")
        return json.loads(line)

    async def send(self, obj):
        self.proc.stdin.write((json.dumps(obj) + "\n").encode())
        await self.proc.stdin.drain()

    async def stop(self):
        try:
            await self.send({"cmd": "quit"})
            await asyncio.wait_for(self.proc.wait(), 10)
        except (asyncio.TimeoutError, ConnectionError):
            self.proc.kill()
            await self.proc.wait()


def _runqueue_wait_s():
    """Seconds this thread has spent runnable but waiting for a CPU (Linux schedstat)."""
    try:
        with open("/proc/thread-self/schedstat") as f:
            return int(f.read().split()[1]) / 1e9
    except (OSError, ValueError, IndexError):
        return 0.0


async def _step(gen, url, client, n):
    from sipmote.relay.backends import SessionConfig, create_backend
    from sipmote.relay.calllog import LatencyStats
    from sipmote.relay.media import MediaSession

    await gen.send({"cmd": "peers", "n": n})
    reply = await gen.read()
    sessions = []
    try:
        for i, addr in enumerate(reply["addrs"]):
            backend = create_backend("openai", url=url, client=client, model="gpt-realtime")
            session = MediaSession(("127.0.0.1", 0), tuple(addr), "pcmu", backend,
                                   SessionConfig(codec="pcmu"), call_id="bench-%d-%d" % (n, i),
                                   rtp_timeout_s=None)
            await session.start()
            sessions.append(session)
        await gen.send({"cmd": "go", "first": reply["first"], "seconds": WARMUP_S + MEASURE_S,
                        "ports": [s.local_port for s in sessions]})
        await asyncio.sleep(WARMUP_S)
        before = {}
        for s in sessions:  # measure the steady state only
            for key in ("in_latency", "out_latency", "lateness"):
                s.stats[key].reset()
            before[s] = (s.stats["late_frames"], s.stats["rtp_out"], s.stats["forwarded"])
        cpu0, t0, wait0 = time.process_time(), time.monotonic(), _runqueue_wait_s()
        await asyncio.sleep(MEASURE_S)
        wall = time.monotonic() - t0
        cpu = (time.process_time() - cpu0) / wall * 100
        waited = (_runqueue_wait_s() - wait0) / wall * 100
        gen_stats = await gen.read()
    finally:
        for s in sessions:
            await s.stop("bench step over")

    def merged(key):
        total = LatencyStats(size=10**7)
        for s in sessions:
            for v in s.stats[key].samples:
                total.add(v)
        return total

    late = sum(s.stats["late_frames"] - before[s][0] for s in sessions)
    sent = sum(s.stats["rtp_out"] - before[s][1] for s in sessions)
    forwarded = sum(s.stats["forwarded"] - before[s][2] for s in sessions)
    lat_in, lat_out = merged("in_latency"), merged("out_latency")
    ms = 1000.0
    return {
        "n": n, "cpu": cpu, "gen_cpu": gen_stats["cpu"], "waited": waited, "late": late,
        "sent": sent,
        "forwarded": forwarded,
        "in_p50": lat_in.percentile(50) * ms, "in_p99": lat_in.percentile(99) * ms,
        "out_p50": lat_out.percentile(50) * ms, "out_p99": lat_out.percentile(99) * ms,
        "lateness_p99": merged("lateness").percentile(99) * ms,
    }


async def _bench(report):
    from openai import AsyncOpenAI

    from sipmote.relay.backends.openai import websocket_base_url

    gen = _Loadgen()
    url = await gen.start()
    # one client for all calls (the relay creates one per call; that is setup, not media)
    client = AsyncOpenAI(api_key="sk-bench", websocket_base_url=websocket_base_url(url))
    # What a long-running relay should do once it has loaded everything: move the ~80k objects
    # of the SDK, pydantic and typing out of the collector's way (a full collection over them
    # stalls the event loop for ~40 ms, i.e. two frames of every call).
    gc.collect()
    gc.freeze()
    load = os.getloadavg()[0]
    start = time.monotonic()
    held = 0
    try:
        for n in STEPS:
            elapsed = time.monotonic() - start
            if elapsed + (WARMUP_S + MEASURE_S + 1.0 + n * 0.01) > BUDGET_S:
                report("relay", "N=%d not tried: time budget" % n, round(elapsed, 1), "s")
                break
            r = await _step(gen, url, client, n)
            retry = max(r["in_p99"], r["out_p99"]) > LIMIT_MS
            if retry and time.monotonic() - start + WARMUP_S + MEASURE_S + 1 < BUDGET_S:
                # other processes share these two cores: one bad run may be theirs, not ours
                report("relay", "N=%d first run p99 (retried)" % n,
                       max(r["in_p99"], r["out_p99"]), "ms")
                r = await _step(gen, url, client, n)
            tag = "N=%d" % n
            report("relay", tag + " in  (RTP -> WebSocket) p50", r["in_p50"], "ms")
            report("relay", tag + " in  (RTP -> WebSocket) p99", r["in_p99"], "ms")
            report("relay", tag + " out (delta -> RTP, no pacing) p50", r["out_p50"], "ms")
            report("relay", tag + " out (delta -> RTP, no pacing) p99", r["out_p99"], "ms")
            report("relay", tag + " pacing lateness p99", r["lateness_p99"], "ms")
            report("relay", tag + " late frames (> 10 ms)", r["late"], "frames",
                   "of %d sent, %d forwarded" % (r["sent"], r["forwarded"]))
            report("relay", tag + " relay CPU", r["cpu"], "% core",
                   "load generator %.0f%%" % r["gen_cpu"])
            report("relay", tag + " relay runnable but not running", r["waited"], "% time",
                   "other processes on these cores (/proc schedstat)")
            if max(r["in_p99"], r["out_p99"]) > LIMIT_MS:
                break
            held = n
    finally:
        await client.close()
        await gen.stop()
    report("relay", "largest N with p99 added latency <= %g ms" % LIMIT_MS, held, "calls",
           "2 cores shared with the load generator; load average %.1f at start" % load)


def run(report):
    asyncio.run(_bench(report))


if __name__ == "__main__":
    if "--loadgen" in sys.argv:
        asyncio.run(_loadgen())
    else:
        def _print(section, name, value, unit, note=""):
            print("%-8s %-50s %10.3f %-6s %s" % (section, name, value, unit, note), flush=True)

        run(_print)
