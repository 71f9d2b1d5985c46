# tests/lib/sip_task_peer.py: a phone.sip_task.SipTask on loopback with a peer socket beside it,
# for device tests on the unix port. MIT licence.
import socket

from phone import config
from phone.sip_task import SipTask


class QuietPhone:
    """What SipTask calls back on, for a phone with no call: only the LED, which must not
    report the task stopping."""

    class led:
        @staticmethod
        def set(state):
            raise AssertionError("the SIP task stopped: LED " + state)


def task_and_peer(phone_port, peer_port, **sip):
    """A SipTask for user kitchen on phone_port (extra `sip` config keys allowed) that accepts
    127.0.0.1, and a non-blocking peer socket on peer_port; returns (task, peer, phone address)."""
    settings = {"user": "kitchen", "local_ip": "127.0.0.1", "local_port": phone_port}
    settings.update(sip)
    cfg = config.validate({"sip": settings, "call": {"allowed_peers": ["127.0.0.1"]}})
    task = SipTask(QuietPhone(), cfg, "127.0.0.1")
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(socket.getaddrinfo("127.0.0.1", peer_port)[0][-1])
    peer.setblocking(False)
    return task, peer, socket.getaddrinfo("127.0.0.1", phone_port)[0][-1]
