# phone.log: leveled log lines for the serial console (and the simulator's stdout). MIT licence.
#
#   log.info("sip", "registered as %s", aor)   ->   "  12.345 INFO  sip: registered as ..."
#
# The time is seconds since boot (ticks_ms). micropython-lib's `logging` is used when it is
# installed (its handlers can then send lines elsewhere); otherwise lines are printed. Log
# calls format strings, so they allocate: none sit on the per-frame audio path. The last few
# warnings and errors are kept for status().
import time

try:
    import logging as _logging
except ImportError:
    _logging = None

DEBUG = 10
INFO = 20
WARNING = 30
ERROR = 40
_NAMES = {DEBUG: "DEBUG", INFO: "INFO", WARNING: "WARN", ERROR: "ERROR"}
LEVELS = {"debug": DEBUG, "info": INFO, "warning": WARNING, "error": ERROR}

_level = INFO
_t0 = time.ticks_ms()
recent = []  # (seconds, level name, tag, message) of the last warnings/errors
_RECENT_MAX = 8


def set_level(name):
    global _level
    _level = LEVELS[name]
    if _logging is not None:
        _logging.basicConfig(level=_level)


def enabled(level):
    return level >= _level


def _emit(level, tag, msg, args):
    if level < _level:
        return
    if args:
        try:
            msg = msg % args
        except (TypeError, ValueError):
            msg = "%s %r" % (msg, args)
    secs = time.ticks_diff(time.ticks_ms(), _t0) / 1000
    if level >= WARNING:
        recent.append((secs, _NAMES[level], tag, msg))
        if len(recent) > _RECENT_MAX:
            recent.pop(0)
    if _logging is not None:
        _logging.getLogger(tag).log(level, msg)
    else:
        print("%8.3f %-5s %s: %s" % (secs, _NAMES[level], tag, msg))


def debug(tag, msg, *args):
    if _level <= DEBUG:
        _emit(DEBUG, tag, msg, args)


def info(tag, msg, *args):
    _emit(INFO, tag, msg, args)


def warning(tag, msg, *args):
    _emit(WARNING, tag, msg, args)


def error(tag, msg, *args):
    _emit(ERROR, tag, msg, args)


def exception(tag, msg, exc):
    """An error line, then the traceback (print_exception on MicroPython)."""
    _emit(ERROR, tag, "%s: %s: %s", (msg, type(exc).__name__, exc))
    try:
        import sys

        sys.print_exception(exc)
    except AttributeError:  # CPython
        import traceback

        traceback.print_exception(exc)
