# The suite runs where only loopback exists (host_tools/netns-run): nothing it sends can leave.
import os
import socket

import pytest


def test_only_loopback_is_reachable():
    if os.environ.get("SIPMOTE_IN_NETNS") != "1":
        pytest.skip("not run through host_tools/netns-run (make test does)")
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        with pytest.raises(OSError):  # "Network is unreachable"
            s.sendto(b"x", ("192.0.2.1", 5060))
    finally:
        s.close()
    names = [name for _, name in socket.if_nameindex()]
    assert names == ["lo"], names
