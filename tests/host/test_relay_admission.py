# Admission building blocks: allowlist, digest-failure lockout, RTP ports, registrar table.
import socket

import pytest

from sipmote.relay.admission import Allowlist, FailureLimiter
from sipmote.relay.bindings import BindingTable, OutOfOrder, same_contact
from sipmote.relay.ports import PortsExhausted, RtpPortAllocator, bind_rtp_socket


def test_allowlist_addresses_networks_and_names():
    allow = Allowlist(
        ["127.0.0.1", "10.1.0.0/16", "::1", "pbx.lan"], resolve=lambda n: ["192.168.7.7"]
    )
    assert "127.0.0.1" in allow and "10.1.200.3" in allow and "192.168.7.7" in allow
    assert "::1" in allow and "::ffff:10.1.0.9" in allow  # v4-mapped source of a dual-stack socket
    assert "127.0.0.2" not in allow and "10.2.0.1" not in allow
    assert "garbage" not in allow and "" not in allow
    assert not Allowlist([])


def test_allowlist_unresolvable_name_is_ignored():
    allow = Allowlist(["nowhere.invalid"], resolve=lambda n: [])
    assert "127.0.0.1" not in allow


def test_lockout_after_max_failures_in_window():
    lim = FailureLimiter(max_failures=3, window_ms=1000, lockout_ms=5000)
    assert not lim.failure("10.0.0.1", 0)
    assert not lim.failure("10.0.0.1", 100)
    assert lim.failure("10.0.0.1", 200)  # third within the window: locked
    assert lim.locked("10.0.0.1", 201) and not lim.locked("10.0.0.2", 201)
    lim.success("10.0.0.1")  # a lockout runs its course
    assert lim.locked("10.0.0.1", 5199)
    assert not lim.locked("10.0.0.1", 5200)


def test_failures_outside_window_do_not_add_up():
    lim = FailureLimiter(max_failures=3, window_ms=1000, lockout_ms=5000)
    for t in range(0, 10000, 600):  # one failure every 600 ms: never 3 within 1 s
        assert not lim.failure("h", t)
    assert not lim.locked("h", 10000)


def test_success_clears_count():
    lim = FailureLimiter(max_failures=2, window_ms=1000, lockout_ms=1000)
    lim.failure("h", 0)
    lim.success("h")
    assert not lim.failure("h", 10)


def test_table_is_bounded_and_keeps_locked_sources_first():
    lim = FailureLimiter(max_failures=1, window_ms=100, lockout_ms=10**9, table_size=16)
    lim.failure("locked", 0)
    for i in range(10000):
        lim.failure("10.9.%d.%d" % (i >> 8, i & 255), 10**6 + i)  # each locks too (max 1)
        assert len(lim) <= 16
    lim2 = FailureLimiter(max_failures=5, window_ms=100, lockout_ms=10**9, table_size=16)
    for _ in range(5):
        lim2.failure("guesser", 0)
    for i in range(1000):  # stale one-off failures are evicted before the locked guesser
        lim2.failure("spoof%d" % i, 1000 + 200 * i)
    assert lim2.locked("guesser", 10**6) and len(lim2) <= 16


def test_port_allocator_even_round_robin_and_exhaustion():
    alloc = RtpPortAllocator(30001, 30010)  # even ports 30002..30010 -> pairs up to 30009/30010?
    ports = [alloc.acquire() for _ in range(alloc.capacity)]
    assert all(p % 2 == 0 for p in ports) and len(set(ports)) == len(ports)
    assert all(p >= 30002 and p + 1 <= 30010 for p in ports)
    with pytest.raises(PortsExhausted):
        alloc.acquire()
    alloc.release(ports[1])
    assert alloc.acquire() == ports[1]
    alloc.release(12345)  # foreign: harmless
    with pytest.raises(ValueError):
        RtpPortAllocator(30001, 30002)


def test_released_port_is_reused_last():
    alloc = RtpPortAllocator(30000, 30007)
    a = alloc.acquire()
    alloc.release(a)
    assert [alloc.acquire() for _ in range(3)] == [30002, 30004, 30006]
    assert alloc.acquire() == a


def test_bind_skips_ports_held_elsewhere():
    squatter = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    squatter.bind(("127.0.0.1", 0))
    held = squatter.getsockname()[1] & ~1
    squatter.close()
    squatter = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        squatter.bind(("127.0.0.1", held))
    except OSError:
        squatter.close()
        pytest.skip("could not hold a port for the test")
    try:
        alloc = RtpPortAllocator(held, held + 3)
        sock, port = bind_rtp_socket(alloc, "127.0.0.1")
        assert port == held + 2 and sock.getsockname()[1] == port
        assert alloc.in_use == 1  # the squatted port went back to the pool
        sock.close()
        alloc.release(port)
        alloc2 = RtpPortAllocator(held, held + 1)
        with pytest.raises(PortsExhausted):
            bind_rtp_socket(alloc2, "127.0.0.1")
        assert alloc2.in_use == 0
    finally:
        squatter.close()


def test_bindings_register_refresh_remove_expire():
    table = BindingTable(max_per_user=2)
    src = ("127.0.0.1", 5070)
    table.update("kitchen", [("sip:kitchen@10.0.0.5:5060", 60)], "c1", 1, src, 0)
    assert [b.contact for b in table.lookup("kitchen", 1000)] == ["sip:kitchen@10.0.0.5:5060"]
    assert table.lookup("kitchen", 1000)[0].expires_in(1000) == 59
    with pytest.raises(OutOfOrder):
        table.update("kitchen", [("sip:kitchen@10.0.0.5:5060", 60)], "c1", 1, src, 1000)
    # refresh with a parameter-only difference replaces, not adds
    table.update(
        "kitchen", [("<sip:kitchen@10.0.0.5:5060;transport=udp>", 120)], "c1", 2, src, 2000
    )
    assert len(table.lookup("kitchen", 2000)) == 1
    table.update(
        "kitchen", [("sip:kitchen@10.0.0.6", 60), ("sip:kitchen@10.0.0.7", 90)], "c2", 1, src, 3000
    )
    assert len(table.lookup("kitchen", 3000)) == 2  # max_per_user: the soonest expiring went
    assert table.lookup("kitchen", 200000) == []  # all expired
    assert table.users(200000) == [] and len(table) == 0
    table.update("desk", [("sip:desk@h", 60)], "c3", 1, src, 0)
    table.update("desk", [("sip:desk@h", 0)], "c3", 2, src, 0)
    assert table.lookup("desk", 0) == []
    table.update("desk", [("sip:desk@h", 60)], "c3", 3, src, 0)
    table.remove_all("desk", "c4", 1, 0)
    assert table.lookup("desk", 0) == []


def test_clamp_and_contact_equality():
    table = BindingTable(min_expires=60, max_expires=3600)
    assert table.clamp(0) == 0 and table.clamp(5) == 60 and table.clamp(10**6) == 3600
    assert same_contact("sip:a@H:5060", "<sip:a@h:5060;ob>")
    assert not same_contact("sip:a@h", "sip:b@h")
