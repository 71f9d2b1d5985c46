# The REPL helpers against a running phone (unix_sim board, no registrar): status() shows the
# state, call() sends the INVITE at once (a loopback socket plays the far end and receives
# it), hangup() ends the call, and a button press places a call like call() does.
import asyncio
import json
import os
import socket

from phone import app, repl
from unix_sim import board as sim_board

RUNTIMES = ("micropython",)
MICROPYTHON_HEAPSIZE = "1M"
BOARDS = (__file__.rsplit("/", 1)[0] + "/../../boards",)


def write_config(far_port):
    path = "/tmp/sipmote-repl-%s.json" % "".join("%02x" % b for b in os.urandom(4))
    with open(path, "w") as f:
        f.write(json.dumps({
            "board": "unix_sim",
            "sip": {"user": "kitchen", "local_ip": "127.0.0.1", "local_port": 45060},
            "call": {"target": "sip:agent@127.0.0.1:%d" % far_port},
            "audio": {"rtp_port": 45100},
        }))
    return path


def far_end(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(socket.getaddrinfo("127.0.0.1", port)[0][-1])
    s.setblocking(False)
    return s


async def receive(sock, timeout_ms=2000, skip_call_id=None):
    """The next INVITE (one of a different call than skip_call_id: the first call's INVITE
    may be retransmitted while its CANCEL waits for a provisional response)."""
    for _ in range(timeout_ms // 10):
        try:
            data = sock.recv(4096)
        except OSError:
            await asyncio.sleep_ms(10)
            continue
        if skip_call_id is None or call_id(data) != skip_call_id:
            return data
    return None


def call_id(data):
    for line in data.split(b"\r\n"):
        if line.lower().startswith(b"call-id:"):
            return line[8:].strip()
    return None


def test_status_call_hangup_and_the_button():
    path = write_config(45070)
    far = far_end(45070)
    try:
        phone = app.build(path, BOARDS)
        sim_board.configure()
        seen = {}

        async def drive():
            for _ in range(100):
                if phone.sip is not None:
                    break
                await asyncio.sleep_ms(10)
            s = repl.status()
            seen["status"] = s
            cid = repl.call()
            seen["invite"] = await receive(far)
            seen["state"] = phone.call.state if phone.call else None
            seen["cid"] = cid
            seen["hangup"] = repl.hangup()
            seen["after"] = phone.call
            sim_board.press(0)  # the button: idle, so it calls the target
            await asyncio.sleep_ms(150)
            sim_board.release(0)
            seen["button_invite"] = await receive(far, skip_call_id=call_id(seen["invite"]))
            phone.finish(0, "test done")

        async def main():
            t = asyncio.create_task(drive())
            code = await phone.run()
            await t
            return code

        assert asyncio.run(main()) == 0
    finally:
        far.close()
        os.remove(path)
    s = seen["status"]
    assert s["board"] == "unix_sim" and s["wifi"]["state"] == "up"
    assert s["sip"]["registration"] == "none" and s["call"] is None
    assert s["sip"]["allowed"] == ["127.0.0.1"]
    assert seen["invite"].startswith(b"INVITE sip:agent@127.0.0.1:45070 SIP/2.0\r\n")
    assert b"m=audio 45100 RTP/AVP 0 8 101" in seen["invite"]
    assert seen["state"] == "calling"
    assert call_id(seen["invite"]) == seen["cid"].encode()
    assert seen["hangup"] is True and seen["after"] is None
    assert seen["button_invite"].startswith(b"INVITE sip:agent@127.0.0.1:45070")
    assert phone.history[0]["reason"] == "REPL hangup"
    assert phone.calls_placed == 2
