# phone.sip_task on the unix port with a loopback peer: a MemoryError out of the UA is logged
# as "out of memory", the collector runs and the task carries on, so the peer's retransmission
# is answered (it used to be swallowed inside the UA and the request was lost for good).
import asyncio

from sip_task_peer import task_and_peer

from phone import log

RUNTIMES = ("micropython",)
MICROPYTHON_HEAPSIZE = "512K"

PHONE_PORT = 45160
PEER_PORT = 45161


def options(branch, phone_port=PHONE_PORT, peer_port=PEER_PORT):
    return ("OPTIONS sip:kitchen@127.0.0.1:%d SIP/2.0\r\n"
            "Via: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bK%s\r\n"
            "Max-Forwards: 70\r\nFrom: <sip:peer@127.0.0.1>;tag=p1\r\n"
            "To: <sip:kitchen@127.0.0.1>\r\nCall-ID: oom-test\r\nCSeq: 1 OPTIONS\r\n"
            "Content-Length: 0\r\n\r\n" % (phone_port, peer_port, branch)).encode()


def run_task_during(task, peer, peer_side):
    """Run the task while the coroutine function peer_side() plays the peer, then stop and
    close both."""

    async def main():
        runner = asyncio.create_task(task.run())
        await peer_side()
        task.running = False
        await runner

    try:
        asyncio.run(main())
    finally:
        task.close()
        peer.close()


def test_out_of_memory_is_logged_collected_and_the_retransmission_answered():
    task, peer, phone_addr = task_and_peer(PHONE_PORT, PEER_PORT)
    real_receive = task.ua.receive
    calls = []

    def receive_after_a_full_heap(data, addr, now):
        calls.append(now)
        if len(calls) == 1:
            raise MemoryError("memory allocation failed")  # what a full heap raises
        real_receive(data, addr, now)

    task.ua.receive = receive_after_a_full_heap
    replies = []

    async def peer_side():
        request = options("oom1")
        for _ in range(4):  # a UAC's retransmissions (timer E)
            peer.sendto(request, phone_addr)
            for _ in range(25):
                await asyncio.sleep_ms(20)
                try:
                    replies.append(peer.recv(1024))
                except OSError:
                    continue
            if replies:
                return

    run_task_during(task, peer, peer_side)
    assert len(calls) >= 2
    assert replies and replies[0].startswith(b"SIP/2.0 200 OK\r\n"), replies
    assert task.out_of_memory == 1
    assert task.status()["out_of_memory"] == 1
    assert [r[3] for r in log.recent if r[2] == "sip" and "out of memory" in r[3]], log.recent


def test_a_datagram_over_the_receive_size_is_dropped_and_the_next_answered():
    # recvfrom() allocates its whole size for every datagram: the task takes 2 KB, not the
    # parser's 16 KB limit, and drops anything bigger (it arrives truncated) with a count.
    task, peer, phone_addr = task_and_peer(PHONE_PORT + 2, PEER_PORT + 2)
    small = options("small", PHONE_PORT + 2, PEER_PORT + 2)
    big = small.replace(b"Content-Length: 0\r\n", b"X-Padding: " + b"x" * 5000 + b"\r\n"
                        b"Content-Length: 0\r\n").replace(b"branch=z9hG4bKsmall",
                                                          b"branch=z9hG4bKbig")
    replies = []

    async def peer_side():
        peer.sendto(big, phone_addr)
        await asyncio.sleep_ms(100)
        peer.sendto(small, phone_addr)
        for _ in range(50):
            await asyncio.sleep_ms(20)
            try:
                replies.append(peer.recv(1024))
            except OSError:
                pass

    run_task_during(task, peer, peer_side)
    assert task.too_big == 1 and task.status()["too_big"] == 1
    assert len(replies) == 1 and b"z9hG4bKsmall" in replies[0], replies
