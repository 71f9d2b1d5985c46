# The simulated device (the real firmware on the MicroPython unix port) against a real
# Kamailio registrar/proxy with digest auth and SIPp, all on 127.0.0.1:
# - it registers (401 -> credentials) and stays registered across refreshes;
# - SIPp calls it through Kamailio (407 for SIPp, Record-Route): it answers, G.711 flows both
#   ways (SIPp's stream reaches its speaker; its microphone WAV is in the RTP it sends,
#   captured with dumpcap), and a BYE from either side ends the call through the proxy;
# - it calls a SIPp UAS through Kamailio (407 answered with its credentials, loose routing);
# - a wrong password is a registration failure the simulator reports with exit status 3.
import os
import signal
import subprocess

import pytest
from simdevice import (
    Kamailio,
    g711_decode,
    g711_file,
    read_wav,
    require,
    require_micropython,
    sim_device,
    sipp_messages,
    sipp_streaming_uac,
    sipp_uas,
    tone_level,
    wait_until,
)

pytestmark = pytest.mark.interop


@pytest.fixture
def kam(tmp_path):
    require_micropython()
    require("sipp")
    k = Kamailio(str(tmp_path))
    yield k
    k.stop()


def registered_device(work, kam, mic_freq=None, password="kitchenpw", expires=600, **kw):
    dev, cfg = sim_device(work, {"sip": {
        "user": "kitchen", "password": password, "domain": "127.0.0.1",
        "registrar": "127.0.0.1:%d" % kam.port, "expires": expires}}, mic_freq, **kw)
    return dev.start(), cfg


def test_registers_with_digest_and_stays_registered_across_refreshes(tmp_path, kam):
    dev, cfg = registered_device(str(tmp_path), kam, expires=10)
    try:
        dev.wait_for("sip: registered", 10)
        # granted 10 s: refreshed every 5 s; three more registrations within 14 s
        wait_until(lambda: dev.log().count("sip: registered") >= 4, 16, "refreshes")
        status = dev.status()
        assert status["sip"]["registration"] == "registered"
        assert status["led"] == "registered"
    finally:
        dev.close()
    saved = kam.log().count("REGISTER sip:kitchen@127.0.0.1 from 127.0.0.1:%d saved"
                            % cfg["sip"]["local_port"])
    assert saved >= 4, kam.log()
    assert "registration failed" not in dev.log()


def test_wrong_password_is_reported_and_exits_3(tmp_path, kam):
    dev, _ = registered_device(str(tmp_path), kam, password="not-the-password",
                               exit_on_register_failure=True)
    try:
        code = dev.wait(20)
    finally:
        dev.close()
    assert code == 3, dev.log()
    assert "registration failed: 401" in dev.log()
    assert "not-the-password" not in dev.log()


def start_capture(work, port):
    path = os.path.join(work, "rtp.pcap")
    proc = subprocess.Popen(
        [require("dumpcap"), "-i", "lo", "-f", "udp port %d" % port, "-P", "-w", path, "-q",
         "-a", "duration:60"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    wait_until(lambda: proc.poll() is not None or (os.path.exists(path)
                                                   and os.path.getsize(path) > 0), 10, "dumpcap")
    if proc.poll() is not None:  # no capture rights here (dumpcap needs root or CAP_NET_RAW)
        pytest.skip("dumpcap cannot capture on lo: %s" % proc.stderr.read().decode().strip())
    return proc, path


def stop_capture(proc):
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def device_rtp(pcap_path, device_port, law):
    """Decoded audio the device sent (from its RTP port) and received (to it)."""
    from pcap import udp_payloads

    sent, received = [], []
    for _ms, src, dst, payload in udp_payloads(pcap_path):
        if len(payload) < 12 + 160 or payload[0] >> 6 != 2:
            continue
        audio = g711_decode(payload[12:], law)
        if src == device_port:
            sent.append(audio)
        elif dst == device_port:
            received.append(audio)
    import numpy as np

    return (np.concatenate(sent) if sent else np.zeros(0),
            np.concatenate(received) if received else np.zeros(0))


@pytest.mark.parametrize("who_hangs_up", ["sipp", "device"])
def test_sipp_calls_the_device_through_kamailio(tmp_path, kam, who_hangs_up):
    work = str(tmp_path)
    require("dumpcap")
    dev, cfg = registered_device(work, kam, mic_freq=900, exit_after_call=True)
    rtp_port = cfg["audio"]["rtp_port"]
    capture = None
    try:
        dev.wait_for("sip: registered", 10)
        capture, pcap_path = start_capture(work, rtp_port)
        stream = os.path.join(work, "far.alaw")
        g711_file(stream, 450, 4, "PCMA", amp=6000)
        scenario = "device_uac.xml" if who_hangs_up == "sipp" else "device_uac_device_hangs_up.xml"
        uac = sipp_streaming_uac(
            work, "127.0.0.1:%d" % kam.port, stream, "PCMA",
            ["-s", "kitchen", "-d", "3000", "-au", "alice", "-ap", "alicepw"],
            scenario=scenario, caller="alice")
        dev.wait_for("call: connected", 10)
        if who_hangs_up == "device":
            wait_until(lambda: dev.status()["media"]["rx_packets"] >= 120, 10, "2.4 s of RTP")
            assert dev.control("hangup") == "ok"
        assert uac.wait(20) == 0, uac.log() + sipp_messages(uac) + kam.log()
        code = dev.wait(15)
    finally:
        if capture is not None:
            stop_capture(capture)
        dev.close()
    messages = sipp_messages(uac)
    assert "407 Proxy Authentication Required" in messages  # Kamailio challenged SIPp
    assert "Record-Route:" in messages
    assert "Route: <sip:127.0.0.1:%d;lr" % kam.port in messages  # ACK/BYE via the proxy
    assert code == 0, dev.log()
    call = dev.result["calls"][0]
    assert call["answered"] and call["direction"] == "in"
    assert call["reason"] == ("remote_bye" if who_hangs_up == "sipp" else "control hangup")
    assert "INVITE from sip:alice@127.0.0.1" in kam.log()
    # SIPp's 450 Hz reached the device's speaker
    rate, spk = read_wav(os.path.join(work, "speaker.wav"))
    assert 4500 < tone_level(spk[int(0.3 * rate):], rate, 450) < 7500
    # the device's microphone (900 Hz) is what its RTP carried, as PCMA
    sent, received = device_rtp(pcap_path, rtp_port, "PCMA")
    assert len(sent) >= 8000 * 2  # two seconds or more
    assert 7500 < tone_level(sent[800:], 8000, 900) < 10500
    assert tone_level(sent[800:], 8000, 450) < 500  # and not the far end's tone
    assert 4500 < tone_level(received, 8000, 450) < 7500


def test_device_calls_a_sipp_uas_through_kamailio(tmp_path, kam):
    work = str(tmp_path)
    uas = sipp_uas(work)
    dev, _ = sim_device(work, {
        "sip": {"user": "kitchen", "password": "kitchenpw", "domain": "127.0.0.1",
                "registrar": "127.0.0.1:%d" % kam.port,
                "outbound_proxy": "127.0.0.1:%d" % kam.port},
        "call": {"target": "sip:agent@127.0.0.1:%d" % uas.port}}, mic_freq=650,
        exit_after_call=True)
    dev.start()
    try:
        dev.wait_for("sip: registered", 10)
        dev.control("call")
        dev.wait_for("call: connected", 10)
        wait_until(lambda: dev.status()["media"]["rx_packets"] >= 100, 10, "echoed RTP")
        dev.control("hangup")
        assert uas.wait(15) == 0, uas.log() + sipp_messages(uas)
        code = dev.wait(15)
    finally:
        dev.close()
        uas.stop()
    assert code == 0, dev.log()
    log = kam.log()
    assert "INVITE from sip:kitchen@127.0.0.1 routed to sip:agent@127.0.0.1:%d" % uas.port in log
    messages = sipp_messages(uas)
    assert "Record-Route: <sip:127.0.0.1:%d;lr" % kam.port in messages
    assert "BYE sip:" in messages
    rate, spk = read_wav(os.path.join(work, "speaker.wav"))
    assert 7000 < tone_level(spk[int(0.3 * rate):], rate, 650) < 10500
