# unix_sim.control: the simulator's control port: button presses and REPL actions over UDP on
# 127.0.0.1, so tests and the demo can drive the firmware like a person would. MIT licence.
#
# One datagram per command, one reply datagram to the sender:
#   press [ms]        press and release the board's button (default 120 ms)
#   call [uri]        place a call (the configured target by default)
#   answer | hangup   the REPL helpers' actions
#   digits KEYS       send RFC 4733 digits in the call
#   status            the status() dict as JSON
#   quit [code]       stop the phone with that exit code (default 0)
# Replies start with "ok" or "error". Commands are bounded (256 bytes) and anything else is an
# error reply. Only the simulator listens: a board's button is a real button.
import asyncio
import json
import select

from phone import log, net

from . import board as sim_board

_MAX_COMMAND = 256


class ControlPort:
    def __init__(self, phone, port, host="127.0.0.1"):
        self.phone = phone
        self.sock = net.udp_socket(host, port)
        self.poller = select.poll()
        self.poller.register(self.sock, select.POLLIN)
        log.info("control", "listening on %s:%d", host, port)

    async def _press(self, ms):
        b = self.phone.board.profile.get("button")
        if b is None:
            raise ValueError("this board has no button")
        sim_board.press(b["pin"], 0 if b.get("active_low", True) else 1)
        await asyncio.sleep_ms(ms)
        sim_board.release(b["pin"])

    async def handle(self, text):
        parts = text.split()
        if not parts:
            raise ValueError("empty command")
        cmd, args = parts[0], parts[1:]
        p = self.phone
        if cmd == "press":
            await self._press(int(args[0]) if args else 120)
            return "ok"
        if cmd == "call":
            return "ok " + str(p.place_call(args[0] if args else None))
        if cmd == "answer":
            p.answer()
            return "ok"
        if cmd == "hangup":
            return "ok" if p.hangup("control hangup") else "error no call"
        if cmd == "digits" and args:
            p.send_digits(args[0])
            return "ok"
        if cmd == "status":
            return "ok " + json.dumps(p.status())
        if cmd == "quit":
            p.finish(int(args[0]) if args else 0, "quit from the control port")
            return "ok"
        raise ValueError("unknown command %r" % cmd)

    async def run(self):
        while True:
            ready = False
            for _ in self.poller.ipoll(0):
                ready = True
            if not ready:
                await asyncio.sleep_ms(20)
                continue
            try:
                data, addr = self.sock.recvfrom(_MAX_COMMAND)
            except OSError:
                continue
            try:
                reply = await self.handle(data.decode())
            except Exception as e:  # noqa: BLE001 - any failure is the reply, not a crash
                reply = "error %s" % e
            log.debug("control", "%r -> %s", data, reply[:60])
            try:
                self.sock.sendto(reply.encode(), addr)
            except OSError as e:
                log.warning("control", "cannot reply: %s", e)
