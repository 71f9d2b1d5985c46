# phone.repl: helpers for the REPL: `from phone.repl import *`. MIT licence.
#
# After Ctrl-C (or from aiorepl while the phone runs):
#   status()        registration, call, RTP counters, jitter, loss, heap
#   call()          call the configured target; call("sip:x@y") calls someone else
#   answer()        answer a ringing call
#   hangup()        end the call
#   digits("123")   send RFC 4733 digits in the call
#   resume()        carry on running the phone's tasks (after Ctrl-C)
# SIP requests these cause go out at once; the rest happens when the loop runs again.
import asyncio

from . import app as _app
from . import status as _status

__all__ = ("status", "call", "answer", "hangup", "digits", "resume", "phone")


def phone():
    if _app.current is None:
        raise RuntimeError("the phone is not running: phone.app.main() starts it")
    return _app.current


def _flush():
    p = phone()
    if p.sip is not None:
        p.sip.flush()


def status():
    return _status.show(phone())


def call(target=None):
    cid = phone().place_call(target)
    _flush()
    return cid


def answer():
    phone().answer()
    _flush()


def hangup():
    ended = phone().hangup("REPL hangup")
    _flush()
    return ended


def digits(keys, duration_ms=100):
    phone().send_digits(keys, duration_ms)


def resume():
    """Run the phone's tasks again after Ctrl-C stopped the loop."""
    p = phone()
    asyncio.get_event_loop().run_until_complete(p.done.wait())
    p.shutdown()
    return p.exit_code
