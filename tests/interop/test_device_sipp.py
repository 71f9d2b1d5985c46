# The simulated device (the real firmware on the MicroPython unix port, sipmote sim) calling
# and called by SIPp straight, on 127.0.0.1, with WAV files as its microphone and speaker.
import os

import pytest
from simdevice import (
    g711_file,
    read_wav,
    require,
    require_micropython,
    sim_device,
    sipp,
    sipp_messages,
    sipp_streaming_uac,
    sipp_uas,
    tone_level,
    wait_until,
)

pytestmark = pytest.mark.interop


@pytest.fixture
def work(tmp_path):
    require_micropython()
    require("sipp")
    return str(tmp_path)


def start_device(work, cfg_sections, mic_freq=None, **kw):
    dev, cfg = sim_device(work, cfg_sections, mic_freq, mic_seconds=8, **kw)
    dev.start()
    dev.wait_for("sip: on 127.0.0.1", 15)
    return dev, cfg


def sipp_streams_to_device(work, cfg_sections, stream_s, hold_ms):
    """SIPp calls the device (started with `cfg_sections`, a 900 Hz microphone, exiting after
    the call), streams `stream_s` seconds of 450 Hz PCMU and hangs up after `hold_ms`.
    Returns (device, its exit status) once both have finished."""
    stream = os.path.join(work, "far.ulaw")
    g711_file(stream, 450, stream_s, "PCMU", amp=6000)
    dev, cfg = start_device(work, cfg_sections, mic_freq=900, exit_after_call=True)
    uac = None
    try:
        uac = sipp_streaming_uac(work, "127.0.0.1:%d" % cfg["sip"]["local_port"], stream, "PCMU",
                                 ["-s", "kitchen", "-d", str(hold_ms)])
        assert uac.wait(20) == 0, uac.log() + sipp_messages(uac)
        code = dev.wait(15)
    finally:
        dev.close()
        if uac is not None:
            uac.stop()
    return dev, code


def speaker_levels(work, freq, start_s=0.3):
    rate, data = read_wav(os.path.join(work, "speaker.wav"))
    body = data[int(start_s * rate):]
    return tone_level(body, rate, freq), rate, data


def test_device_calls_a_sipp_uas_and_hears_its_microphone_echoed(work):
    uas = sipp_uas(work)
    dev, cfg = start_device(work, {"call": {"target": "sip:echo@127.0.0.1:%d" % uas.port}},
                            mic_freq=700, exit_after_call=True)
    try:
        assert dev.control("call").startswith("ok ")
        dev.wait_for("call: connected", 10)
        wait_until(lambda: dev.status()["media"]["rx_packets"] >= 60, 10, "echoed RTP")
        status = dev.status()
        assert status["call"]["state"] == "in_call" and status["led"] == "in_call"
        assert dev.control("hangup") == "ok"
        code = dev.wait(15)
        assert uas.wait(10) == 0, uas.log()
    finally:
        dev.close()
        uas.stop()
    assert code == 0, dev.log()
    assert dev.result["calls"][0]["reason"] == "control hangup"
    media = dev.result["calls"][0]["media"]
    assert media["tx_packets"] >= 60 and media["rx_packets"] >= 55 and media["lost"] <= 2
    # the 700 Hz the microphone heard went out as PCMU and came back to the speaker
    level, _, _ = speaker_levels(work, 700)
    assert 7000 < level < 10000, level
    assert "BYE sip:" in sipp_messages(uas)


def test_device_answers_sipp_and_plays_its_stream_until_sipp_hangs_up(work):
    dev, code = sipp_streams_to_device(work, {"call": {"allowed_peers": ["127.0.0.1"]}}, 3, 2500)
    assert code == 0, dev.log()
    call = dev.result["calls"][0]
    assert call["direction"] == "in" and call["answered"]
    assert call["reason"] == "remote_bye"
    assert dev.result["answered"] == 1
    assert call["media"]["rx_packets"] >= 90  # about 2.5 s of SIPp's stream
    level, _, _ = speaker_levels(work, 450)
    assert 4500 < level < 7500, level  # what SIPp streamed, through jitter buffer and speaker


def test_invite_from_a_host_that_is_not_allowed_gets_no_answer(work):
    # The device accepts requests from 127.0.0.1 only (its call target's host); a "scanner"
    # on 127.0.0.2 calls it straight: no response at all, no call, the LED stays idle.
    dev, cfg = start_device(work, {"call": {"target": "sip:agent@127.0.0.1:5999"}})
    try:
        scanner = sipp(work, "127.0.0.1:%d" % cfg["sip"]["local_port"], stock="uac",
                       local_ip="127.0.0.2", timeout_s=4, extra=["-s", "kitchen"])
        assert scanner.wait(15) != 0  # SIPp gave up: nothing came back
        messages = sipp_messages(scanner)
        assert "INVITE sip:kitchen@" in messages and "SIP/2.0 1" not in messages
        status = dev.status()
        assert status["call"] is None and status["calls"]["history"] == []
        assert status["sip"]["stats"]["blocked"] >= 1
        assert status["led"] == "idle"
    finally:
        dev.close()
        scanner.stop()


def test_no_rtp_from_the_far_end_hangs_up(work):
    uas = sipp_uas(work, echo=False)
    dev, cfg = start_device(  # call.auto_call: the boot option places the call
        work, {"call": {"target": "sip:silent@127.0.0.1:%d" % uas.port, "no_rtp_hangup_s": 2,
                        "auto_call": True}}, exit_after_call=True)
    try:
        code = dev.wait(20)
        assert uas.wait(10) == 0, uas.log()
    finally:
        dev.close()
        uas.stop()
    assert code == 4, dev.log()  # answered, but no audio ever came
    assert dev.result["calls"][0]["reason"] == "no RTP"
    assert "no RTP for 2 s" in dev.log()


def test_digits_go_out_as_rfc4733_and_come_back_from_the_echo(work):
    uas = sipp_uas(work)
    dev, cfg = start_device(work, {"call": {"target": "sip:echo@127.0.0.1:%d" % uas.port}})
    try:
        dev.control("call")
        dev.wait_for("call: connected", 10)
        assert dev.control("digits 19#") == "ok"
        dev.wait_for("received digit #", 10)
        assert dev.status()["media"]["digits_received"] == 3
        log = dev.log()
        assert log.index("received digit 1") < log.index("received digit 9")
        dev.control("hangup")
        assert uas.wait(10) == 0
    finally:
        dev.close()
        uas.stop()


def test_the_button_places_and_ends_the_call(work):
    uas = sipp_uas(work)
    dev, cfg = start_device(work, {"call": {"target": "sip:echo@127.0.0.1:%d" % uas.port}})
    try:
        assert dev.control("press") == "ok"
        dev.wait_for("call: connected", 10)
        assert dev.control("press 200") == "ok"
        dev.wait_for("call: ended: button", 10)
        assert uas.wait(10) == 0
        assert dev.status()["led"] == "idle"
    finally:
        dev.close()
        uas.stop()


def test_a_half_duplex_pdm_board_turns_to_the_far_end_and_back(work):
    # unix_sim_pdm: the Atom Echo's audio (PDM mic, stereo speaker, one shared bus)
    dev, code = sipp_streams_to_device(
        work, {"board": "unix_sim_pdm", "call": {"allowed_peers": ["127.0.0.1"]}}, 1.5, 3500)
    assert code == 0, dev.log()
    media = dev.result["calls"][0]["media"]
    # mic -> speaker while SIPp streamed, speaker -> mic after its 1.5 s of audio
    assert media["turns"] >= 2, media
    assert media["tx_packets"] >= 150  # silence went out while the speaker had the bus
    level, _, _ = speaker_levels(work, 450)
    assert level > 1000, level  # SIPp's tone was played (for part of the recording)
