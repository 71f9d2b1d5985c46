"""The userspace impairment router of tests/lib/netlab.py, run inside the lab's middle namespace.

    ip netns exec ROUTER python netlab_router.py UPLINK_IFACE DOWNLINK_IFACE DEVICE_NET

It creates a TUN device and policy routes so that every IPv4 packet arriving from either veth
goes through this process: it reads the packet from the TUN, decides its fate and writes it
back, and the kernel forwards it on. Real packets, real addresses, nothing rewritten. The
direction is told by the source address: from DEVICE_NET (the device's side) is the uplink.

Per direction, with a seeded RNG: random loss, delay with uniform jitter (which reorders
packets when the jitter exceeds their spacing), duplication; and an outage (every packet both
ways dropped) for a given time, on command. Commands are JSON lines on stdin, answers JSON
lines on stdout:

    {"cmd": "profile", "uplink": {...}, "downlink": {...}, "seed": 1}   -> {"ok": true}
        each direction: loss (0..1), delay_ms, jitter_ms, duplicate (0..1)
    {"cmd": "outage", "ms": 2000}   -> {"ok": true}      both directions, from now
    {"cmd": "stats"}                -> {"uplink": {...}, "downlink": {...}}
    {"cmd": "quit"}

Why not netem: this kernel has no sch_netem; the harness uses netem where it exists. The first
line printed is {"ready": true} once the TUN and the routes are up.
"""

import asyncio
import fcntl
import ipaddress
import json
import os
import random
import struct
import subprocess
import sys
import time

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
TABLE = "100"


def open_tun(name):
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    return fd


def sh(*argv):
    subprocess.run(argv, check=True, capture_output=True)


def route_through(tun, ifaces):
    """Packets arriving on `ifaces` are routed into the TUN; what the TUN gives back follows
    the main table out of the other veth."""
    sh("ip", "link", "set", tun, "up")
    for i, iface in enumerate(ifaces):
        sh("ip", "rule", "add", "iif", iface, "lookup", TABLE, "pref", str(100 + i))
    sh("ip", "route", "add", "default", "dev", tun, "table", TABLE)
    for name in ["all", "default", tun] + list(ifaces):
        # the packet comes back on the TUN with a source the main table puts on a veth
        sh("sysctl", "-qw", "net.ipv4.conf.%s.rp_filter=0" % name)
    sh("sysctl", "-qw", "net.ipv4.ip_forward=1")


class Direction:
    def __init__(self, name):
        self.name = name
        self.loss = 0.0
        self.delay_ms = 0.0
        self.jitter_ms = 0.0
        self.duplicate = 0.0
        self.last_due = 0.0
        self.stats = {"packets": 0, "forwarded": 0, "lost": 0, "outage_dropped": 0,
                      "duplicated": 0, "reordered": 0, "delay_ms_sum": 0.0}

    def configure(self, spec):
        self.loss = float(spec.get("loss", 0))
        self.delay_ms = float(spec.get("delay_ms", 0))
        self.jitter_ms = float(spec.get("jitter_ms", 0))
        self.duplicate = float(spec.get("duplicate", 0))


class Router:
    def __init__(self, fd, device_net):
        self.fd = fd
        self.device_net = ipaddress.ip_network(device_net)
        self.up = Direction("uplink")
        self.down = Direction("downlink")
        self.rng = random.Random(1)
        self.outage_until = 0.0
        self.loop = None

    def profile(self, cmd):
        self.up.configure(cmd.get("uplink") or {})
        self.down.configure(cmd.get("downlink") or {})
        self.rng = random.Random(cmd.get("seed", 1))

    def on_readable(self):
        for _ in range(64):
            try:
                packet = os.read(self.fd, 65535)
            except BlockingIOError:
                return
            self.route(packet)

    def route(self, packet):
        if len(packet) < 20 or packet[0] >> 4 != 4:
            os.write(self.fd, packet)  # not IPv4: pass untouched
            return
        src = ipaddress.IPv4Address(packet[12:16])
        d = self.up if src in self.device_net else self.down
        s = d.stats
        s["packets"] += 1
        now = time.monotonic()
        if now < self.outage_until:
            s["outage_dropped"] += 1
            return
        if d.loss and self.rng.random() < d.loss:
            s["lost"] += 1
            return
        copies = 2 if d.duplicate and self.rng.random() < d.duplicate else 1
        if copies == 2:
            s["duplicated"] += 1
        for _ in range(copies):
            delay = d.delay_ms
            if d.jitter_ms:
                delay += self.rng.uniform(-d.jitter_ms, d.jitter_ms)
            delay = max(0.0, delay) / 1000.0
            due = now + delay
            if due < d.last_due:
                s["reordered"] += 1  # it will overtake a packet that arrived before it
            d.last_due = max(d.last_due, due)
            s["delay_ms_sum"] += delay * 1000
            if delay <= 0:
                self.send(packet, d)
            else:
                self.loop.call_at(self.loop.time() + delay, self.send, packet, d)

    def send(self, packet, d):
        try:
            os.write(self.fd, packet)
            d.stats["forwarded"] += 1
        except OSError:
            pass

    def command(self, cmd):
        kind = cmd.get("cmd")
        if kind == "profile":
            self.profile(cmd)
            return {"ok": True}
        if kind == "outage":
            self.outage_until = time.monotonic() + cmd["ms"] / 1000.0
            return {"ok": True}
        if kind == "stats":
            return {"uplink": dict(self.up.stats), "downlink": dict(self.down.stats)}
        return {"error": "unknown command %r" % kind}


async def main(argv):
    up_iface, down_iface, device_net = argv[1], argv[2], argv[3]
    fd = open_tun("nltun0")
    route_through("nltun0", (up_iface, down_iface))
    router = Router(fd, device_net)
    loop = asyncio.get_running_loop()
    router.loop = loop
    loop.add_reader(fd, router.on_readable)
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    print(json.dumps({"ready": True}), flush=True)
    while True:
        line = await reader.readline()
        if not line:
            break
        try:
            cmd = json.loads(line)
        except ValueError:
            print(json.dumps({"error": "not JSON"}), flush=True)
            continue
        if cmd.get("cmd") == "quit":
            break
        print(json.dumps(router.command(cmd)), flush=True)
    loop.remove_reader(fd)
    os.close(fd)


if __name__ == "__main__":
    asyncio.run(main(sys.argv))
