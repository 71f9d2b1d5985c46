# A far end that closes its RTP port (it hung up first, or never opened it) makes the kernel
# answer our next packet with ICMP port unreachable, which a connected UDP socket reports as
# ECONNREFUSED on its next read or write. The call's audio task must carry on (the call's
# signalling decides when it ends): the relay hanging up first once killed the phone's app in
# the 46th call of `make soak` ("media task failed: OSError: [Errno 111] ECONNREFUSED").
import asyncio

from test_media import FarEnd, peer_media, session

from unix_sim import board as sim_board

RUNTIMES = ("micropython",)
MICROPYTHON_HEAPSIZE = "512K"


def test_port_unreachable_does_not_stop_the_audio_task():
    s = session("unix_sim")
    s.local_port = 41030
    s.start(peer_media(41032))  # nobody listens on 41032: every packet draws an ICMP error
    failures = []

    async def main():
        dma = asyncio.create_task(sim_board.dma_task())
        task = asyncio.create_task(s.run())
        await asyncio.sleep_ms(300)
        sent_unheard = s.tx_packets
        far = FarEnd(41032, 41030)  # the port opens again: audio flows both ways
        await far.run(20)
        s.running = False
        try:
            await task
        except OSError as e:
            failures.append(e)
        dma.cancel()
        far.sock.close()
        return sent_unheard, far

    sent_unheard, far = asyncio.run(main())
    assert failures == [], failures
    assert sent_unheard >= 10  # it kept sending while the far end was closed
    assert far.received >= 10 and s.stats()["rx_packets"] >= 10  # and recovered after
