# phone.app when the heap runs out while a call's audio starts: the call is hung up with the
# reason "out of memory" and the phone carries on, instead of a call left up without audio
# whose half-made session later crashed the phone (AttributeError at shutdown). The call's
# buffers themselves are made at boot (phone.app._call_resources), once for every call.
import json
import os

from phone import app, log
from phone.app import Call
from voip.sdp_session import LocalSession

RUNTIMES = ("micropython",)
MICROPYTHON_HEAPSIZE = "1M"
BOARDS = (__file__.rsplit("/", 1)[0] + "/../../boards",)


class RecordingSip:
    """Stands in for phone.sip_task.SipTask: records what the app asks of it."""

    local_ip = "127.0.0.1"
    registered = False

    def __init__(self):
        self.hangups = []

    def hangup(self, call_id):
        self.hangups.append(call_id)
        return True

    def close(self):
        pass


def phone_with_a_call():
    path = "/tmp/sipmote-oom-%s.json" % "".join("%02x" % b for b in os.urandom(4))
    with open(path, "w") as f:
        f.write(json.dumps({"board": "unix_sim", "sip": {"user": "kitchen",
                                                          "local_ip": "127.0.0.1"},
                            "audio": {"rtp_port": 45200}}))
    try:
        phone = app.build(path, BOARDS)
    finally:
        os.remove(path)
    phone.sip = RecordingSip()
    c = phone.call = Call("oom-call", "out", "sip:agent@127.0.0.1")
    c.sdp = LocalSession("127.0.0.1", 45200, username="sipmote")
    far = LocalSession("127.0.0.1", 45210, codecs=("PCMU",))
    answer, _media = far.answer(c.sdp.offer())
    return phone, answer


def test_the_session_is_made_at_boot_and_kept_for_every_call():
    phone, _answer = phone_with_a_call()
    assert phone.session is not None and phone.media is None
    assert phone.session.jitter is not None  # the 2.5 KB ring exists before any call


def test_no_memory_for_the_calls_audio_hangs_up_with_the_reason():
    phone, answer = phone_with_a_call()

    def full_heap(media):
        phone.session.sender = object()  # a start() that got part of the way
        raise MemoryError("memory allocation failed, allocating 2560 bytes")

    phone.session.start = full_heap
    phone.on_answered("oom-call", answer)
    assert phone.call is None and phone.media is None and phone.media_task is None
    assert phone.sip.hangups == ["oom-call"]  # BYE: the call was answered
    last = phone.history[-1]
    assert last["reason"] == "out of memory" and last["answered"], last
    assert [r for r in log.recent if "cannot start the call's audio: MemoryError" in r[3]]
    phone.shutdown()  # and nothing half-made is left to trip over
