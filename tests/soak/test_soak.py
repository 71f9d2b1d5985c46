# The short soak of the suite: 50 sequential SIPp digest calls with RTP against `sipmote relay`
# in its own process (tests/soak/soak.py); `make soak` runs hundreds, and the device's soak.
# After every batch the relay holds no call and no RTP port, and has exactly the open files
# and sockets it had after the warm-up; no call failed. RSS is printed (it is only compared
# over the long run, once the SIP transactions of the last calls have expired).
import soak
from simdevice import require


def test_fifty_sipp_calls_leave_the_relay_as_they_found_it(tmp_path):
    require("sipp")
    lines = []
    result = soak.relay_soak(str(tmp_path), calls=50, batch=20, warmup=10, report=lines.append)
    print("\n" + "\n".join(lines))
    assert result["failed"] == 0
    (_, base), *rest = result["batches"]
    assert base["calls"] == 0 and base["rtp_ports"] == 0
    for done, fig in rest:
        assert (fig["calls"], fig["rtp_ports"]) == (0, 0), (done, fig)
        assert (fig["fds"], fig["sockets"]) == (base["fds"], base["sockets"]), (done, fig, base)
    assert rest[-1][1]["admitted"] == 50  # every call got through the digest check
