# A flood of distinct SIP requests into the simulated device (the firmware on the MicroPython
# unix port, started by sipmote.loopback with the relay it calls) from an allowed address, its
# relay's (127.0.0.1): a compromised or looping peer, or a scanner sharing the relay's host.
# The device answers every one, its transaction table stays at sip.max_transactions (8), its
# live heap grows by what 8 transactions hold and no more, and afterwards it still answers
# OPTIONS and places a call through the relay that carries its audio.
import asyncio
import socket

from simdevice import require_micropython

FLOOD = 400
KINDS = (("OPTIONS", "", b"200"), ("MESSAGE", "", b"405"), ("BYE", "", b"481"),
         ("FLOOD", "", b"501"), ("INVITE", "Require: x-flood\r\n", b"420"),
         ("REGISTER", "", b"405"))


def request(i, device_port, peer_port):
    method, extra, _status = KINDS[i % len(KINDS)]
    return ("%s sip:kitchen@127.0.0.1:%d SIP/2.0\r\n"
            "Via: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bKflood%d\r\n"
            "Max-Forwards: 70\r\nFrom: <sip:scan@127.0.0.1>;tag=f%d\r\n"
            "To: <sip:kitchen@127.0.0.1>\r\nCall-ID: flood-%d@127.0.0.1\r\n"
            "CSeq: 1 %s\r\n%sContent-Length: 0\r\n\r\n"
            % (method, device_port, peer_port, i, i, i, method, extra)).encode()


def branch_of(reply):
    at = reply.find(b"branch=z9hG4bKflood")
    end = reply.find(b"\r\n", at)
    return int(reply[at + 19 : end]) if at >= 0 and end > at else None


def test_a_flood_from_an_allowed_address_leaves_the_device_bounded_and_working(tmp_path):
    require_micropython()
    from sipmote.loopback import LoopbackSystem

    async def main():
        async with LoopbackSystem(str(tmp_path), "echo", tone=440) as system:
            port = system.device_cfg["sip"]["local_port"]
            device = ("127.0.0.1", port)
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind(("127.0.0.1", 0))  # the relay's host: allowed (the call target's)
            sock.setblocking(False)
            peer_port = sock.getsockname()[1]
            answered, wrong = set(), []

            def read():
                while True:
                    try:
                        data = sock.recv(4096)
                    except BlockingIOError:
                        return
                    i = branch_of(data)
                    if i is None or data[8:11] != KINDS[i % len(KINDS)][2]:
                        wrong.append(data[:200])
                    else:
                        answered.add(i)

            try:
                idle = await system.device_status()
                loop = asyncio.get_running_loop()
                deadline = loop.time() + 30
                for i in range(FLOOD):
                    # as fast as the device answers: at most 40 unanswered at a time (more
                    # would overflow its socket's receive queue, a loss no SIP stack can help)
                    while i - len(answered) >= 40 and loop.time() < deadline:
                        await asyncio.sleep(0.002)
                        read()
                    sock.sendto(request(i, port, peer_port), device)
                for _ in range(50):
                    await asyncio.sleep(0.02)
                    read()
                full = await system.device_status()  # every transaction lives 32 s
                sock.sendto(request(6000, port, peer_port), device)  # a fresh OPTIONS
                for _ in range(50):
                    await asyncio.sleep(0.02)
                    read()
                    if 6000 in answered:
                        break
                call = await system.place_call()
                await asyncio.sleep(1.0)
                stats = dict(call.media.stats)
                media = (await system.device_status())["media"]
                await system.hangup("device")
                await asyncio.wait_for(asyncio.shield(call.ended), 10)
            finally:
                sock.close()
            return idle, full, answered, wrong, stats, media

    idle, full, answered, wrong, stats, media = asyncio.run(main())
    growth = full["heap"]["used"] - idle["heap"]["used"]
    sip = full["sip"]
    print("\nflood of %d requests from the relay's address: device answered %d, table %d/%d, "
          "live heap %+d B" % (FLOOD, len(answered & set(range(FLOOD))), sip["transactions"],
                               sip["max_transactions"], growth))
    assert wrong == [], wrong[:3]
    assert answered >= set(range(FLOOD)), "unanswered: %s" % sorted(set(range(FLOOD)) - answered)
    assert sip["max_transactions"] == 8 and sip["transactions"] == 8, sip
    assert sip["overload"] == 0 and sip["stats"]["errors"] == 0 and sip["out_of_memory"] == 0
    assert growth <= 8 * 5120 + 8192, growth  # 3-4.5 KB a transaction (64-bit unix port)
    assert 6000 in answered, "no 200 to OPTIONS after the flood"
    # the call is up and carries the device's audio to the agent (the echo agent answers
    # only when an utterance ends, and the tone never does)
    assert stats["forwarded"] >= 30 and media["tx_packets"] >= 30, (stats, media)
