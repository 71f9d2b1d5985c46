"""SIPp as the caller and the test as its callee, on 127.0.0.1: SIPp runs a UAC scenario that
replays RTP captures (play_pcap_audio) to the port our answer names; the test answers the
INVITE and the BYE by hand and keeps every RTP datagram with its arrival time. This exercises
the device's protocol code (SDP, RTP, DTMF, jitter, statistics) against SIPp's own packets
without a SIP stack of ours in the way."""

import os
import socket
import struct
import subprocess
import time

from peers_harness import free_udp_port, require


def trimmed_pcap(source, target, packets):
    """The first `packets` records of a classic pcap file (the global header is 24 bytes)."""
    with open(source, "rb") as f:
        data = f.read()
    endian = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    pos = 24
    for _ in range(packets):
        pos += 16 + struct.unpack_from(endian + "I", data, pos + 8)[0]
    with open(target, "wb") as f:
        f.write(data[:pos])


def reply_200(request, body=b""):
    """200 OK echoing Via, From, To (tagged), Call-ID and CSeq of SIPp's request."""
    lines = []
    for line in request.split(b"\r\n\r\n", 1)[0].decode().split("\r\n")[1:]:
        name = line.split(":", 1)[0].strip().lower()
        if name in ("via", "from", "call-id", "cseq"):
            lines.append(line)
        elif name == "to":
            lines.append(line if "tag=" in line else line + ";tag=sipp-caller")
    lines.append("Contact: <sip:test@127.0.0.1>")
    if body:
        lines.append("Content-Type: application/sdp")
    lines.append("Content-Length: %d" % len(body))
    return ("SIP/2.0 200 OK\r\n" + "\r\n".join(lines) + "\r\n\r\n").encode() + body


def call_from_sipp(workdir, scenario_xml, options, answer, listen_s=15):
    """Run SIPp with `scenario_xml` (its text) calling us, plus `options` (its argv tail:
    ports, service). `answer(invite, rtp_port)` checks SIPp's INVITE and gives the SDP of our
    200 OK. Returns [(arrival ms, datagram, source address)] of what reached our RTP port
    until SIPp's BYE; fails unless SIPp hung up within `listen_s` and exited 0."""
    sipp = require("sipp")
    path = os.path.join(str(workdir), "uac.xml")
    with open(path, "w") as f:
        f.write(scenario_xml)
    sip = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sip.bind(("127.0.0.1", 0))
    rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rtp.bind(("127.0.0.1", free_udp_port(even=True)))
    sip.settimeout(10)
    rtp.settimeout(0.02)
    cmd = [sipp, "127.0.0.1:%d" % sip.getsockname()[1], "-sf", path, "-m", "1"]
    cmd += ["-i", "127.0.0.1", "-timeout", "20s", "-timeout_error", "-nostdin"] + list(options)
    proc = subprocess.Popen(
        cmd, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    received = []
    try:
        invite, sipp_addr = sip.recvfrom(65535)
        assert invite.startswith(b"INVITE ")
        sip.sendto(reply_200(invite, answer(invite, rtp.getsockname()[1])), sipp_addr)
        sip.setblocking(False)
        bye = None
        deadline = time.monotonic() + listen_s
        while bye is None and time.monotonic() < deadline:
            try:
                data, source = rtp.recvfrom(2048)
                received.append((int(time.monotonic() * 1000), data, source))
            except TimeoutError:
                pass
            try:
                message = sip.recv(65535)
            except BlockingIOError:
                continue
            if message.startswith(b"BYE "):
                bye = message
        assert bye is not None, "SIPp never hung up"
        sip.sendto(reply_200(bye), sipp_addr)
        proc.wait(timeout=20)
        assert proc.returncode == 0, proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        sip.close()
        rtp.close()
    return received
