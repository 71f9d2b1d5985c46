# The user agent fed the RFC 4475 torture messages and thousands of mutated datagrams, in
# process only (their Via hosts are TEST-NET addresses: nothing here touches a socket). Each
# message gets the answer its INDEX.md row asks of an endpoint, every answer goes back to the
# source IP, and nothing ever raises or is counted as an internal error. Both runtimes.
from checks import is_micropython
from mutation import Lcg, mutate

from voip.sip.ua import UserAgent

RUNTIMES = ("cpython", "micropython")
MICROPYTHON_HEAPSIZE = "512K"

SOURCE = ("127.0.0.1", 5099)


def _data_dir():
    if is_micropython():
        return "../data"  # the plugin runs MicroPython with cwd = this file's directory
    import os

    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data")


DATA = _data_dir() + "/rfc4475/"


def index_files():
    names = []
    with open(DATA + "INDEX.md") as f:
        for line in f:
            cells = [c.strip() for c in line.split("|")]
            if len(cells) > 2 and cells[1].endswith(".dat"):
                names.append(cells[1])
    return names


# What this endpoint answers (status lines' codes, in order; [] = silently dropped) and the
# events it raises. INDEX.md's expectation for an endpoint (UAS) in the comment.
EXPECT = {
    "wsinv.dat": ([481], []),  # valid; its To has a tag, so it names a dialog we do not have
    "intmeth.dat": ([501], []),  # unknown method: 501
    "esc01.dat": ([180], ["incoming_call"]),  # accept
    "escnull.dat": ([405], []),  # valid REGISTER; we are no registrar: 405
    "esc02.dat": ([501], []),  # RE%47IST%45R is not REGISTER: 501
    "lwsdisp.dat": ([200], []),  # accept
    "longreq.dat": ([180], ["incoming_call"]),  # accept
    "dblreq.dat": ([405], []),  # process the REGISTER, ignore the trailing INVITE
    "semiuri.dat": ([200], []),  # accept
    "transports.dat": ([200], []),  # accept
    "mpart01.dat": ([415], []),  # accept; a MESSAGE with a multipart body: 415 (or 405)
    "unreason.dat": ([], []),  # a response to nothing we sent
    "noreason.dat": ([], []),
    "badinv01.dat": ([400], []),
    "clerr.dat": ([400], []),
    "ncl.dat": ([400], []),
    "scalar02.dat": ([400], []),
    "scalarlg.dat": ([], []),  # response: silently discard
    "quotbal.dat": ([400], []),
    "ltgtruri.dat": ([400], []),
    "lwsruri.dat": ([400], []),
    "lwsstart.dat": ([400], []),
    "trws.dat": ([400], []),
    "escruri.dat": ([400], []),
    "baddate.dat": ([180], ["incoming_call"]),  # the Date does not matter to us
    "regbadct.dat": ([400], []),
    "badaspec.dat": ([400], []),
    "baddn.dat": ([400], []),
    "badvers.dat": ([505], []),
    "mismatch01.dat": ([400], []),
    "mismatch02.dat": ([400], []),  # 501 or 400
    "bigcode.dat": ([], []),  # response code > 699: drop
    "badbranch.dat": ([200], []),  # RFC 2543 matching fallback
    "insuf.dat": ([400], []),  # no Call-ID/From/To: 400 built from Via and CSeq
    "unkscm.dat": ([416], []),
    "novelsc.dat": ([416], []),
    "unksm2.dat": ([400], []),  # To is not a SIP URI
    "bext01.dat": ([420], []),  # with Unsupported
    "invut.dat": ([415], []),  # with Accept: application/sdp
    "regaut01.dat": ([405], []),  # non-registrar endpoint: 405
    "multi01.dat": ([400], []),
    "mcl01.dat": ([400], []),
    "bcast.dat": ([], []),  # endpoint discards
    "zeromf.dat": ([200], []),  # Max-Forwards 0 means nothing to an endpoint
    "cparam01.dat": ([405], []),
    "cparam02.dat": ([405], []),
    "regescrt.dat": ([405], []),
    "sdp01.dat": ([406], []),  # Accept without application/sdp
    "inv2543.dat": ([180], ["incoming_call"]),  # RFC 2543 INVITE: accepted
    "test.dat": ([], []),  # junk without a SIP version or a Via: dropped
}


def make_ua(allowed=("*",)):
    return UserAgent({"user": "u", "local": ("127.0.0.1", 5060), "allowed_hosts": list(allowed)})


def feed(ua, data, source=SOURCE, now=0):
    ua.receive(data, source, now)
    out = ua.outgoing()
    statuses = []
    for wire, addr in out:
        assert addr[0] == source[0], "an answer went to %r, not to the source" % (addr,)
        line = wire.split(b"\r\n", 1)[0]
        assert line.startswith(b"SIP/2.0 "), "the UA sent a request: %r" % line
        statuses.append(int(line[8:11]))
    return statuses


def test_every_index_row_has_an_expectation():
    files = index_files()
    assert len(files) == 50
    assert sorted(files) == sorted(EXPECT.keys())


def test_torture_messages_get_the_endpoint_answers():
    for name in index_files():
        with open(DATA + name, "rb") as f:
            data = f.read()
        ua = make_ua()
        statuses = feed(ua, data)
        kinds = [e.kind for e in ua.events()]
        assert (statuses, kinds) == EXPECT[name], "%s: %r %r" % (name, statuses, kinds)
        assert ua.stats["errors"] == 0, name
        # The same datagram again: a retransmission gets the same answer, never a new call.
        again = feed(ua, data, now=100)
        assert again == statuses or (again == [] and not statuses), name
        assert [e.kind for e in ua.events()] == [], name
        ua.tick(10 ** 6)  # every timer fires; still nothing raises
        assert ua.stats["errors"] == 0, name


def test_torture_messages_from_strangers_get_nothing():
    for name in index_files():
        with open(DATA + name, "rb") as f:
            data = f.read()
        ua = make_ua(allowed=("127.0.0.2",))
        assert feed(ua, data) == [], name
        ua.tick(10 ** 6)
        assert ua.outgoing() == [] and ua.events() == [], name


TOKENS = [b'"', b"<", b">", b",", b";", b":", b"%", b"\r\n", b"\r\n ", b" ", b"\x00", b"\xff",
          b"=", b"@", b"tag=x", b"SIP/2.0", b"\r\n\r\n", b"CSeq: 1 BYE\r\n", b"To: <sip:b@h>;tag=",
          b"Content-Length: 9\r\n", b"9" * 12, b"INVITE", b"ACK", b"CANCEL", b"z9hG4bK"]


def test_mutated_datagrams_never_break_a_ua_with_live_calls():
    # Seeds: the requests a peer sends in a real call to this UA, and responses to its own.
    from sip_network import Network

    from voip.sip.ua import UserAgent as Ua

    net = Network()
    a_addr, b_addr = ("127.0.0.1", 5061), ("127.0.0.1", 5062)
    conf = {"allowed_hosts": ["127.0.0.1"]}
    a = net.add(a_addr, Ua(dict(conf, user="a", local=a_addr)))
    b = net.add(b_addr, Ua(dict(conf, user="b", local=b_addr)))
    call_id = a.call("sip:b@127.0.0.1:5062", b"v=0\r\n", 0)
    net.settle()
    b.answer(call_id, b"v=0\r\n", net.now)
    net.settle()
    captured = []

    def fate(data, src, dst):
        captured.append(data)
        return 1

    net.fate = fate
    a.update_media(call_id, b"v=0\r\ns=hold\r\n", net.now)
    net.settle()
    b.hangup(call_id, net.now)
    net.settle()
    call2 = a.call("sip:b@127.0.0.1:5062", b"v=0\r\n", net.now)
    net.settle()
    b.answer(call2, b"v=0\r\n", net.now)
    net.settle()
    seeds = captured
    assert len(seeds) >= 5
    rng = Lcg(4475)
    count = 400 if is_micropython() else 2000
    for i in range(count):
        data = mutate(rng, seeds[rng.below(len(seeds))], TOKENS, kinds=4)
        b.receive(data, a_addr, net.now + i)
        a.receive(data, b_addr, net.now + i)
        if i % 50 == 0:
            a.tick(net.now + i * 100)
            b.tick(net.now + i * 100)
        a.outgoing()
        b.outgoing()
        a.events()
        b.events()
    assert a.stats["errors"] == 0 and b.stats["errors"] == 0
    assert a.layer.stats["errors"] == 0 and b.layer.stats["errors"] == 0
    assert len(a.layer) <= 32 and len(a._calls) <= 2 * a.max_calls + 2
