"""An in-process relay for the interop tests, with a backend that records what reaches it.

``RecordingBackend`` implements the real backend interface (sipmote.relay.backends.Backend):
the media session hands it the caller's audio exactly as it would hand it to OpenAI, so the
tests can compare the bytes with what the peer streamed. It can also refuse to connect
(-> 503) or go away mid-call (-> the relay sends BYE).
"""

import asyncio

from sipmote.relay import config
from sipmote.relay.backends import EV_CLOSED, Backend, BackendError, BackendEvent
from sipmote.relay.service import Relay


class RecordingBackend(Backend):
    name = "recording"

    def __init__(self, fail=False, close_after_frames=None):
        super().__init__()
        self.fail = fail
        self.close_after_frames = close_after_frames
        self.frames = []
        self.connected = False
        self.closed = False
        self.config = None

    async def connect(self, cfg):
        if self.fail:
            raise BackendError("recording backend told to refuse")
        self.config = cfg
        self.native_format = self.choose_format(cfg.codec)
        self.connected = True

    async def send_audio(self, payload):
        self.frames.append(bytes(payload))
        if self.close_after_frames is not None and len(self.frames) == self.close_after_frames:
            self.emit(BackendEvent(EV_CLOSED, text="recording backend hung up"))

    async def close(self):
        self.closed = True

    @property
    def audio(self):
        return b"".join(self.frames)


def relay_config(tmp_path, **sections):
    """A loopback relay config: SIP on a free port, one agent, one device, RTP 40000-40999."""
    data = {
        "sip": {"bind": "127.0.0.1", "port": 0, "rtp_port_min": 40000, "rtp_port_max": 40999},
        "agents": [{"name": "assistant", "instructions": "test"}, {"name": "parrot"}],
        "devices": [{"user": "kitchen", "password": "kitchen-pw"}],
        "logging": {"calls_dir": str(tmp_path / "calls")},
        "control": {"socket": str(tmp_path / "relay.sock")},
    }
    for name, value in sections.items():
        if isinstance(value, dict) and isinstance(data.get(name), dict):
            data[name] = dict(data[name], **value)
        else:
            data[name] = value
    return config.from_dict(data, environ={})


class RelayUnderTest:
    """The relay plus the backends it created, one per call, in order."""

    def __init__(self, cfg, **backend_options):
        self.backends = []
        self.backend_options = backend_options
        self.relay = Relay(cfg, backend_factory=self._backend, control=False)

    def _backend(self, call, kind):
        backend = RecordingBackend(**self.backend_options)
        self.backends.append(backend)
        return backend

    async def __aenter__(self):
        self.host, self.port = await self.relay.start()
        self.address = "%s:%d" % (self.host, self.port)
        return self

    async def __aexit__(self, *exc):
        await self.relay.stop()

    async def wait_idle(self, timeout=5):
        """Until every call has ended and released its port (or fail)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            if not self.relay.calls and self.relay.ports.in_use == 0:
                return
            await asyncio.sleep(0.05)
        raise AssertionError(
            "relay not idle: calls %r, ports in use %d"
            % (self.relay.calls, self.relay.ports.in_use)
        )
