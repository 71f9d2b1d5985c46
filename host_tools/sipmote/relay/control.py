"""The relay's local control socket: how `sipmote relay call DEVICE` reaches a running relay.

A Unix stream socket (file permissions decide who may use it: 0600, the relay's user) carrying
one JSON object per line each way::

    {"op": "call", "device": "kitchen", "agent": "assistant"}  -> {"ok": true, "call_id": ...}
    {"op": "status"}                                           -> {"ok": true, "calls": [...], ...}

A request line is at most 4 KiB and a connection carries one request: nothing a local client
sends can make the relay hold more. The call reply is written once the device answered or the
call failed.
"""

import asyncio
import contextlib
import json
import logging
import os

log = logging.getLogger("sipmote.relay.control")
_MAX_LINE = 4096


class ControlServer:
    def __init__(self, relay, path):
        self.relay = relay
        self.path = path
        self._server = None

    async def start(self):
        if os.path.exists(self.path):
            if await _alive(self.path):
                raise OSError("another relay is listening on %s" % self.path)
            os.unlink(self.path)  # left over by a relay that died
        old_umask = os.umask(0o177)
        try:
            self._server = await asyncio.start_unix_server(self._serve, path=self.path)
        finally:
            os.umask(old_umask)

    async def stop(self):
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
            with contextlib.suppress(OSError):
                os.unlink(self.path)

    async def _serve(self, reader, writer):
        try:
            line = await asyncio.wait_for(reader.readline(), 10)
            if len(line) > _MAX_LINE or not line.endswith(b"\n"):
                reply = {"ok": False, "error": "request too long or incomplete"}
            else:
                reply = await self._handle(line)
            writer.write(json.dumps(reply).encode() + b"\n")
            await writer.drain()
        except (asyncio.TimeoutError, ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.LimitOverrunError:
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _handle(self, line):
        try:
            request = json.loads(line)
        except ValueError:
            return {"ok": False, "error": "not JSON"}
        if not isinstance(request, dict):
            return {"ok": False, "error": "expected a JSON object"}
        op = request.get("op")
        if op == "status":
            return dict(ok=True, **self.relay.status())
        if op == "call":
            device = request.get("device")
            agent = request.get("agent")
            if not isinstance(device, str) or (agent is not None and not isinstance(agent, str)):
                return {"ok": False, "error": "call needs a device name"}
            try:
                result = await self.relay.call_device(device, agent)
            except (LookupError, ValueError, OSError) as e:
                return {"ok": False, "error": str(e)}
            return dict(ok=True, **result)
        return {"ok": False, "error": "unknown op %r" % (op,)}


async def _alive(path):
    try:
        _, writer = await asyncio.open_unix_connection(path)
    except OSError:
        return False
    writer.close()
    return True


async def request(path, message, timeout=60):
    """Send one request to a running relay and return its reply (raises OSError)."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_unix_connection(path), 5)
    except (FileNotFoundError, ConnectionRefusedError):
        raise OSError("no relay is running at %s" % path) from None
    try:
        writer.write(json.dumps(message).encode() + b"\n")
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), timeout)
    except asyncio.TimeoutError:
        raise OSError("the relay did not answer within %d s" % timeout) from None
    finally:
        writer.close()
    try:
        return json.loads(line)
    except ValueError:
        raise OSError("the relay sent no valid reply") from None
