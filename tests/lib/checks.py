# tests/lib/checks.py: the few helpers assert-style tests need, for CPython and MicroPython alike
# (pytest is not there under MicroPython). MIT licence.


class Skip(Exception):
    """Raised by skip(); both runners report the test as skipped."""


def skip(reason):
    try:
        import pytest
    except ImportError:
        raise Skip(reason)  # noqa: B904 - under MicroPython the runner reports this
    pytest.skip(reason)


def is_micropython():
    import sys

    return sys.implementation.name == "micropython"


class raises:
    """Context manager: the block must raise `exc_type`, whose message contains `match`."""

    def __init__(self, exc_type, match=None):
        self.exc_type = exc_type
        self.match = match
        self.value = None

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            raise AssertionError("did not raise " + self.exc_type.__name__)
        if not issubclass(exc_type, self.exc_type):
            return False
        if self.match is not None and self.match not in str(exc):
            raise AssertionError("%r does not contain %r" % (str(exc), self.match))
        self.value = exc
        return True
