"""The whole system on one machine: the relay and a simulated device talking over 127.0.0.1.

`sipmote demo`, the full-system tests (tests/e2e, through tests/lib/e2e.py), the end-to-end
benchmark and the soak tests all start the system this way::

    async with LoopbackSystem(workdir, backend="echo", mic="caller.wav") as system:
        call = await system.place_call()       # the device dials the relay; both sides are up
        ...                                    # system.relay, call.media, system.device
        await system.hangup("device")          # or "relay"
        held = await system.wait_idle()        # every call, port, socket, task released
    system.device_result                       # the device's SIM-RESULT (its exit report)

The relay (sipmote.relay.service.Relay) runs in this process on the caller's asyncio loop, so a
test reaches its calls, their media sessions and their backends. The device is the real
firmware (modules/phone + modules/voip) on the MicroPython unix port in a subprocess
(sipmote.sim.SimDevice, the unix_sim board): its microphone plays a WAV file (or a tone), its
speaker records to a WAV file, both paced in real time, and it takes commands on a UDP control
port (phone.control). Both bind 127.0.0.1 only.

Backends: "echo" (offline, plays each utterance back) or "openai" (OpenAI Realtime; give
``openai_url`` to point it at a local fake server, ``api_key`` or OPENAI_API_KEY otherwise).
``relay_config`` / ``device_config`` override sections of either side's configuration (e.g.
``device_config={"call": {"target": "sip:assistant@127.0.0.1:5999"}}`` to put a proxy in the
way); ``on_device_line(line)`` sees each line the firmware prints, as it prints it.

``resources()`` says what each side holds right now (relay: calls, RTP ports, asyncio tasks
beyond those of an idle relay, open file descriptors of this process; device: its call and
media, live heap after a collection, open sockets of its process); ``wait_idle()`` waits until
both are back to what they held before the first call and returns that report.
"""

import asyncio
import contextlib
import gc
import json
import os
import secrets
import socket
import time

from .sim import SimDevice

DEVICE_USER = "kitchen"
AGENT = "assistant"
_POLL_S = 0.05


def free_udp_port(even=False, host="127.0.0.1"):
    """A UDP port nobody holds now (with an even one, the odd RTCP port above is free too)."""
    for _ in range(200):
        with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_DGRAM)) as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
        if port >= 60000 or (even and port % 2):
            continue
        if even:
            with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_DGRAM)) as t:
                try:
                    t.bind((host, port + 1))
                except OSError:
                    continue
        return port
    raise RuntimeError("no free UDP port on %s" % host)


def _merge(base, overrides):
    for name, value in (overrides or {}).items():
        if isinstance(value, dict) and isinstance(base.get(name), dict):
            base[name] = dict(base[name], **value)
        else:
            base[name] = value
    return base


def _process_fds(pid="self"):
    """(open file descriptors, of which sockets) of a process; (None, None) off Linux."""
    path = "/proc/%s/fd" % pid
    try:
        names = os.listdir(path)
    except OSError:
        return None, None
    sockets = 0
    for name in names:
        try:
            if os.readlink(os.path.join(path, name)).startswith("socket:"):
                sockets += 1
        except OSError:
            pass
    return len(names), sockets


class LoopbackSystem:
    def __init__(self, workdir, backend="echo", *, openai_url=None, api_key=None, model=None,
                 transcription_model=None, instructions=None, mic=None, tone=None,
                 mic_loop=False, speaker=None, relay_config=None, device_config=None,
                 on_device_line=None, heapsize="1M", mpy=False, rtp_ports=(42000, 42999),
                 device_log_level="info", freeze_gc=True, boards=None,
                 playout_prebuffer_ms=None):
        self.workdir = os.path.abspath(workdir)
        os.makedirs(self.workdir, exist_ok=True)
        self.backend = backend
        self.speaker = os.path.abspath(speaker or os.path.join(self.workdir, "speaker.wav"))
        self.calls_dir = os.path.join(self.workdir, "calls")
        self.on_device_line = on_device_line
        self._password = secrets.token_hex(8)
        backend_cfg = {"kind": backend}
        if backend == "openai":
            if openai_url:
                backend_cfg["openai_url"] = openai_url
            if model:
                backend_cfg["model"] = model
            if transcription_model:
                backend_cfg["transcription_model"] = transcription_model
            key = api_key or os.environ.get("OPENAI_API_KEY")
            if key:
                backend_cfg["api_key"] = key
        agent = {"name": AGENT}
        if instructions:
            agent["instructions"] = instructions
        self._relay_data = _merge({
            "sip": {"bind": "127.0.0.1", "port": 0, "rtp_port_min": rtp_ports[0],
                    "rtp_port_max": rtp_ports[1]},
            "backend": backend_cfg,
            "agents": [agent],
            "devices": [{"user": DEVICE_USER, "password": self._password}],
            "logging": {"calls_dir": self.calls_dir},
        }, relay_config)
        if playout_prebuffer_ms is not None:  # the relay's [media] prebuffer_ms, for benchmarks
            self._relay_data.setdefault("media", {})["prebuffer_ms"] = playout_prebuffer_ms
        self._device_overrides = device_config
        self._device_log_level = device_log_level
        self._freeze_gc = freeze_gc
        self._froze = False
        self._device_args = {"mic": mic, "tone": tone, "mic_loop": mic_loop,
                             "heapsize": heapsize, "mpy": mpy}
        if boards:
            self._device_args["boards"] = boards
        self.relay = None
        self.device = None
        self.device_cfg = None
        self.device_result = None
        self.device_exit = None
        self.sip_port = None
        self._baseline_tasks = set()
        self._baseline_fds = None
        self._device_baseline_sockets = None
        self._lines_seen = 0
        self._pump = None

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self, timeout=20.0):
        from .relay import config as relay_config
        from .relay.service import Relay

        cfg = relay_config.from_dict(self._relay_data, environ={})
        self.relay = Relay(cfg, control=False)
        try:
            _host, self.sip_port = await self.relay.start()
            self._write_device_config()
            self.device = SimDevice(
                self.device_config_path, speaker=self.speaker,
                control_port=free_udp_port(), **self._device_args,
            )
            self.device.start()
            self._pump = asyncio.create_task(self._pump_lines(), name="device-log")
            await self.wait_line("sip: on 127.0.0.1", timeout)
        except BaseException:
            await self.stop()
            raise
        if self._freeze_gc:
            # as `sipmote relay` does: the objects of start-up never get collected again, so no
            # full collection stalls the pacing clock (tens of ms in a big test process)
            gc.collect()
            gc.freeze()
            self._froze = True
        self._baseline_tasks = set(asyncio.all_tasks())
        self._baseline_fds = _process_fds()[0]
        self._device_baseline_sockets = self.device_sockets()
        return self

    async def stop(self, timeout=10.0):
        """Quit the device (its speaker WAV is then complete), stop the relay (BYE to any call
        still up). Safe to call twice."""
        if self.device is not None and self.device.proc is not None:
            self.device_exit = await asyncio.to_thread(self.device.stop, timeout)
            self.device_result = self.device.result
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
            self._pump = None
            self._forward_lines()
        if self.device is not None:
            await asyncio.to_thread(self.device.close)
        if self.relay is not None:
            await self.relay.stop()
        if self._froze:
            gc.unfreeze()  # a test process goes on: let its objects be collected again
            self._froze = False

    async def __aenter__(self):
        return await self.start()

    async def __aexit__(self, *exc):
        await self.stop()

    def _write_device_config(self):
        cfg = _merge({
            "board": "unix_sim",
            "log_level": self._device_log_level,
            "sip": {"user": DEVICE_USER, "password": self._password, "local_ip": "127.0.0.1",
                    "local_port": free_udp_port()},
            "call": {"target": "sip:%s@127.0.0.1:%d" % (AGENT, self.sip_port)},
            "audio": {"rtp_port": free_udp_port(even=True)},
        }, self._device_overrides)
        self.device_config_path = os.path.join(self.workdir, "device.json")
        with open(self.device_config_path, "w") as f:
            json.dump(cfg, f, indent=1)
        self.device_cfg = cfg

    # -- the device's log -------------------------------------------------------------------------

    def _forward_lines(self):
        lines = self.device.lines
        while self._lines_seen < len(lines):
            line = lines[self._lines_seen]
            self._lines_seen += 1
            if self.on_device_line is not None:
                self.on_device_line(line)

    async def _pump_lines(self):
        while True:
            self._forward_lines()
            await asyncio.sleep(_POLL_S)

    def line_count(self):
        return len(self.device.lines)

    async def wait_line(self, text, timeout=10.0, since=0):
        """The first device log line from index `since` on that contains text."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            lines = self.device.lines
            for line in lines[since:]:
                if text in line:
                    return line
            since = max(since, len(lines))
            exited = self.device.proc.poll() is not None
            if exited or loop.time() > deadline:
                why = "exited" if exited else "timed out after %g s" % timeout
                raise TimeoutError("device %s waiting for %r; its log ends:\n%s" % (
                    why, text, "\n".join(self.device.lines[-40:])))
            await asyncio.sleep(_POLL_S)

    # -- calls ------------------------------------------------------------------------------------

    async def control(self, command, timeout=5.0):
        try:
            return await asyncio.to_thread(self.device.control, command, timeout)
        except OSError as e:  # socket.timeout included: say what the device was doing
            alive = "running" if self.device.proc.poll() is None else "exited"
            raise TimeoutError("device (%s) did not answer %r: %s; its log ends:\n%s" % (
                alive, command, e, "\n".join(self.device.lines[-30:]))) from None

    async def device_status(self):
        reply = await self.control("status")
        if not reply.startswith("ok "):
            raise RuntimeError("device status: %s" % reply)
        return json.loads(reply[3:])

    async def place_call(self, target=None, timeout=10.0):
        """The device calls (the relay's agent by default); returns the relay's Call once the
        relay has confirmed it and the device's media is running."""
        since = self.line_count()
        reply = await self.control("call" + (" " + target if target else ""))
        if not reply.startswith("ok "):
            raise RuntimeError("device refused to call: %s" % reply)
        call_id = reply[3:].strip()
        await self.wait_line("media: ", timeout, since)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            call = self.relay.calls.get(call_id)
            if call is not None and call.state == "confirmed" and call.media is not None:
                return call
            if loop.time() > deadline:
                raise TimeoutError("relay did not confirm call %s: %r" % (call_id, call))
            await asyncio.sleep(0.01)

    async def hangup(self, side="device", call=None):
        """Hang up from the device (its BYE) or the relay (the relay's BYE)."""
        if side == "device":
            reply = await self.control("hangup")
            if reply != "ok":
                raise RuntimeError("device hangup: %s" % reply)
        elif side == "relay":
            calls = [call] if call is not None else list(self.relay.calls.values())
            for c in calls:
                await self.relay.hangup(c.call_id)
        else:
            raise ValueError("side must be 'device' or 'relay'")

    # -- resources --------------------------------------------------------------------------------

    def device_sockets(self):
        if self.device is None or self.device.proc is None or self.device.proc.poll() is not None:
            return None
        return _process_fds(self.device.proc.pid)[1]

    def relay_resources(self):
        current = asyncio.current_task()
        extra = [t for t in asyncio.all_tasks()
                 if t not in self._baseline_tasks and t is not current and not t.done()]
        fds = _process_fds()[0]
        return {
            "calls": len(self.relay.calls),
            "rtp_ports_in_use": self.relay.ports.in_use,
            "extra_tasks": sorted(t.get_name() + ":" + _coro_name(t) for t in extra),
            "fds": fds,
            "fds_over_baseline": None if fds is None else fds - self._baseline_fds,
            "sip_transactions": sum(1 for _ in self.relay.endpoint.layer.transactions()),
        }

    async def device_resources(self):
        status = await self.device_status()
        return {
            "call": status["call"],
            "media": status["media"] is not None,
            "heap_used": status["heap"]["used"],
            "heap_free": status["heap"]["free"],
            "sockets": self.device_sockets(),
            "sockets_over_baseline": (None if self._device_baseline_sockets is None
                                      else self.device_sockets() - self._device_baseline_sockets),
            "sip_stats": (status["sip"] or {}).get("stats"),
        }

    async def resources(self):
        return {"relay": self.relay_resources(), "device": await self.device_resources()}

    @staticmethod
    def is_idle(res):
        r, d = res["relay"], res["device"]
        return (r["calls"] == 0 and r["rtp_ports_in_use"] == 0 and not r["extra_tasks"]
                and (r["fds_over_baseline"] is None or r["fds_over_baseline"] <= 0)
                and d["call"] is None and not d["media"]
                and (d["sockets_over_baseline"] is None or d["sockets_over_baseline"] <= 0))

    async def wait_idle(self, timeout=10.0):
        """Until neither side holds anything of a call (else TimeoutError naming what is
        held); returns the resources report."""
        t_end = time.monotonic() + timeout
        while True:
            res = await self.resources()
            if self.is_idle(res):
                return res
            if time.monotonic() > t_end:
                raise TimeoutError("not idle after %g s: %s" % (timeout, json.dumps(res)))
            await asyncio.sleep(0.1)


def _coro_name(task):
    coro = task.get_coro()
    return getattr(coro, "__qualname__", type(coro).__name__)
