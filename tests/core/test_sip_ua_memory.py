# A MemoryError inside the UA is not a bad datagram: it leaves receive()/tick() (counted in
# ua.stats["out_of_memory"]) so the device's shell can collect and carry on, and the peer's
# retransmission gets through. Every other exception is still counted and swallowed.
# (Swallowed, it made a call on a tight heap silently never connect.)
import gc

from checks import is_micropython, raises

from voip.sip.ua import UserAgent

RUNTIMES = ("cpython", "micropython")
MICROPYTHON_HEAPSIZE = "256K"

A = ("127.0.0.1", 5061)
B = ("127.0.0.1", 5062)
OFFER = b"v=0\r\no=a 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" \
        b"m=audio 4000 RTP/AVP 0\r\na=sendrecv\r\n"


def ua(addr, user):
    return UserAgent({"user": user, "local": addr, "allowed_hosts": ["127.0.0.1"]})


def an_invite():
    """The INVITE a calls b with, as bytes on the wire."""
    a = ua(A, "a")
    a.call("sip:b@127.0.0.1:5062", OFFER, 0)
    (data, dest), = a.outgoing()
    assert dest == B
    return data


def kinds(u):
    return [e.kind for e in u.events()]


def test_a_real_memory_error_leaves_receive_and_the_retransmission_gets_through():
    if not is_micropython():
        from checks import skip

        skip("heap_lock() is MicroPython's")
    import micropython

    b = ua(B, "b")
    invite = an_invite()
    gc.collect()
    failed = None
    micropython.heap_lock()  # every allocation now raises MemoryError
    try:
        b.receive(invite, A, 0)
    except MemoryError as e:
        failed = e
    micropython.heap_unlock()
    assert isinstance(failed, MemoryError)
    assert b.stats["out_of_memory"] == 1 and b.stats["errors"] == 0
    assert kinds(b) == []
    b.receive(invite, A, 500)  # the caller's retransmission (timer A)
    assert kinds(b) == ["incoming_call"]
    assert b.stats["out_of_memory"] == 1 and b.stats["errors"] == 0


def _raise(exc):
    def fail(*args):
        raise exc

    return fail


def test_memory_error_deep_in_the_transaction_layer_propagates():
    b = ua(B, "b")
    invite = an_invite()
    real = b.layer._receive_request
    b.layer._receive_request = _raise(MemoryError())
    with raises(MemoryError):
        b.receive(invite, A, 0)
    assert b.stats["out_of_memory"] == 1 and b.stats["errors"] == 0
    assert b.layer.stats["errors"] == 0
    b.layer._receive_request = real
    b.receive(invite, A, 500)
    assert kinds(b) == ["incoming_call"]


def test_memory_error_while_handling_an_event_propagates():
    b = ua(B, "b")
    real = b._on_request
    b._on_request = _raise(MemoryError())
    with raises(MemoryError):
        b.receive(an_invite(), A, 0)
    assert b.stats["out_of_memory"] == 1 and b.stats["errors"] == 0
    b._on_request = real


def test_memory_error_in_a_timer_propagates_out_of_tick():
    a = ua(A, "a")
    a.call("sip:b@127.0.0.1:5062", OFFER, 0)
    a.outgoing()
    a.layer.tick = _raise(MemoryError())
    with raises(MemoryError):
        a.tick(500)
    assert a.stats["out_of_memory"] == 1 and a.stats["errors"] == 0


def test_any_other_exception_is_still_counted_and_swallowed():
    b = ua(B, "b")
    b.layer._receive_request = _raise(ValueError("a bug"))
    b.receive(an_invite(), A, 0)  # does not raise
    assert b.layer.stats["errors"] == 1
    b = ua(B, "b")
    b._on_request = _raise(KeyError("a bug"))
    b.receive(an_invite(), A, 0)
    assert b.stats["errors"] == 1 and isinstance(b.last_error, KeyError)
    a = ua(A, "a")
    a.call("sip:b@127.0.0.1:5062", OFFER, 0)
    a.layer.tick = _raise(IndexError("a bug"))
    a.tick(500)
    assert a.stats["errors"] == 1 and a.stats["out_of_memory"] == 0
