# phone.sip_task under a flood of distinct SIP requests from an allowed address (a scanner
# behind the relay, a looping PBX), on the unix port over loopback UDP. Every request is
# answered and starts a transaction that lives 32 s (timer J/H), so without a bound the table
# grows with the flood. The phone's table is sip.max_transactions (default 8): the live heap
# with the table full stays within 5 KB a slot (measured on the 64-bit unix port: +36 KB for
# 8, +146 KB for 32), the UA recycles the oldest finished transaction for each new request
# (none is refused), and a valid OPTIONS is answered after the flood. The same flood into the
# UA's old default of 32 is the negative control: it must take several times the heap, or
# this test measures nothing.
import asyncio
import gc

from checks import raises
from sip_task_peer import task_and_peer

from phone import config

RUNTIMES = ("micropython",)
MICROPYTHON_HEAPSIZE = "1M"

PHONE_PORT = 45180
PEER_PORT = 45181
FLOOD = 240


_KINDS = (
    # (method line, extra headers, expected status)
    ("OPTIONS sip:kitchen@127.0.0.1", "", 200),
    ("MESSAGE sip:kitchen@127.0.0.1", "", 405),
    ("INFO sip:kitchen@127.0.0.1", "", 405),
    ("BYE sip:kitchen@127.0.0.1", "", 481),  # no such dialog
    ("FLOOD sip:kitchen@127.0.0.1", "", 501),
    ("INVITE sip:kitchen@127.0.0.1", "Require: x-flood\r\n", 420),  # INVITE tx, never ACKed
)


def request(i, phone_port, peer_port):
    line, extra, _status = _KINDS[i % len(_KINDS)]
    method = line.split(" ")[0]
    cseq_method = method
    return ("%s:%d SIP/2.0\r\n"
            "Via: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bKflood%d\r\n"
            "Max-Forwards: 70\r\nFrom: <sip:scan@127.0.0.1>;tag=f%d\r\n"
            "To: <sip:kitchen@127.0.0.1>\r\nCall-ID: flood-%d@127.0.0.1\r\n"
            "CSeq: %d %s\r\n%sContent-Length: 0\r\n\r\n"
            % (line, phone_port, peer_port, i, i, i, i + 1, cseq_method, extra)).encode()


def live_heap():
    gc.collect()
    return gc.mem_alloc()


def flood(max_transactions, port_offset):
    phone_port, peer_port = PHONE_PORT + port_offset, PEER_PORT + port_offset
    task, peer, phone_addr = task_and_peer(phone_port, peer_port,
                                           max_transactions=max_transactions)
    out = {"replies": 0, "wrong": 0, "peak": 0, "options_ok": False}
    answered = bytearray(FLOOD + 8)  # by request number: made before the heap is measured

    def read_replies():
        # recv, not readinto: the unix port's readinto glues queued datagrams together. What
        # it allocates is garbage by the time the heap is measured (after a collection).
        while True:
            try:
                data = peer.recv(2048)
            except OSError:
                return
            out["replies"] += 1
            at = data.find(b"branch=z9hG4bKflood")
            end = data.find(b"\r\n", at)
            if at < 0 or end < 0:
                out["wrong"] += 1
                continue
            i = int(data[at + 19 : end])
            if data[:8] != b"SIP/2.0 " or int(data[8:11]) != _KINDS[i % len(_KINDS)][2]:
                out["wrong"] += 1
            elif i < len(answered):
                answered[i] = 1

    async def main():
        runner = asyncio.create_task(task.run())
        for i in range(FLOOD, FLOOD + len(_KINDS)):  # warm-up: whatever a first request makes
            peer.sendto(request(i, phone_port, peer_port), phone_addr)
        await asyncio.sleep_ms(100)
        read_replies()
        task.clock.ms += 40000  # every warm-up transaction's timers run out (32 s)
        await asyncio.sleep_ms(60)
        assert task.status()["transactions"] == 0
        out["idle"] = live_heap()
        for i in range(FLOOD):
            peer.sendto(request(i, phone_port, peer_port), phone_addr)
            if i % 8 == 7:
                await asyncio.sleep_ms(10)  # ~800 requests/s: the task keeps up, nothing queues
                read_replies()
            if i % 40 == 39:
                used = live_heap()
                if used > out["peak"]:
                    out["peak"] = used
        for _ in range(50):
            await asyncio.sleep_ms(20)
            read_replies()
        used = live_heap()  # the table is full now: every transaction lives 32 s
        out["full"] = used
        if used > out["peak"]:
            out["peak"] = used
        out["status"] = task.status()
        out["answered"] = sum(answered[:FLOOD])
        peer.sendto(request(6 * 1000, phone_port, peer_port), phone_addr)  # a fresh OPTIONS
        for _ in range(25):
            await asyncio.sleep_ms(20)
            try:
                data = peer.recv(2048)
            except OSError:
                continue
            if data[:12] == b"SIP/2.0 200 " and b"flood6000" in data:
                out["options_ok"] = True
                break
        task.running = False
        await runner

    try:
        asyncio.run(main())
    finally:
        task.close()
        peer.close()
    return out


def test_a_request_flood_keeps_the_phones_transaction_table_and_heap_bounded():
    small = flood(8, 0)
    status = small["status"]
    growth = small["peak"] - small["idle"]
    print("flood of %d requests, 8 transactions: live heap +%d B at the peak, +%d B full"
          % (FLOOD, growth, small["full"] - small["idle"]))
    assert status["max_transactions"] == 8 and status["transactions"] == 8, status
    big = flood(32, 2)  # the UA's old default: the same flood holds four times the slots
    big_growth = big["peak"] - big["idle"]
    print("the same flood, 32 transactions: live heap +%d B" % big_growth)
    assert small["answered"] == FLOOD and small["wrong"] == 0, small  # each, as it should be
    assert status["overload"] == 0 and status["stats"]["errors"] == 0, status
    assert small["options_ok"], "no 200 to OPTIONS after the flood"
    # 3-4.5 KB a slot on this 64-bit port (an INVITE's holds its 420 and the request); 40 KB
    assert growth <= 8 * 5120, growth
    assert big["status"]["transactions"] == 32 and big["options_ok"], big["status"]
    assert big_growth > 3 * growth, (big_growth, growth)


def test_max_transactions_is_validated_naming_the_key():
    cfg = config.validate({"sip": {"user": "kitchen"}})
    assert cfg["sip"]["max_transactions"] == 8
    for bad in (5, 33, "8", True):
        with raises(config.ConfigError, match="sip.max_transactions must be an integer 6..32"):
            config.validate({"sip": {"user": "kitchen", "max_transactions": bad}})
