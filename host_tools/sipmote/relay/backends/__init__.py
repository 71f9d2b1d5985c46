"""AI backends: the one interface a media session talks to, in the spirit of PJSIP 2.17's
``pjmedia_ai_backend_op`` (connect, send audio, receive audio and events, close).

A backend is created per call, then::

    backend.on_event = callback          # set by the media session before connect()
    await backend.connect(config)        # raises BackendError when it cannot serve the call
    await backend.send_audio(payload)    # caller audio in backend.native_format, in order
    await backend.send_dtmf("5")         # a caller keypress (RFC 4733), as the backend sees fit
    await backend.truncate(item_id, audio_end_ms)   # barge-in: the caller heard only this much
    await backend.cancel_response(response_id)      # barge-in: stop generating
    await backend.close()                # idempotent; no event after it returns

Events reach ``on_event(event)`` synchronously from the backend's own receive task, in the
order the backend produced them (a callback, not a queue: agent audio reaches the playout
without a task switch). ``BackendEvent.type`` is one of the ``EV_*`` names below.

Formats: ``native_format`` is "pcmu" or "pcma" (G.711 passes straight through: the relay
neither decodes nor resamples) or "pcm16_24k" (the relay converts with resample.py). A backend
lists what it accepts in ``formats``; ``choose_format(codec)`` picks G.711 pass-through when it
can. Backends: ``openai`` (OpenAI Realtime GA) and ``echo`` (offline: plays each utterance back).
"""

import dataclasses

PCMU = "pcmu"
PCMA = "pcma"
PCM16_24K = "pcm16_24k"

EV_READY = "ready"  # the backend accepted the session configuration
EV_SPEECH_STARTED = "speech_started"  # item_id, ms: caller started talking (barge-in trigger)
EV_SPEECH_STOPPED = "speech_stopped"  # item_id, ms
EV_CALLER_TRANSCRIPT = "caller_transcript"  # item_id, text
EV_RESPONSE_CREATED = "response_created"  # response_id
EV_AGENT_AUDIO = "agent_audio"  # response_id, item_id, audio (bytes in native_format)
EV_AGENT_AUDIO_DONE = "agent_audio_done"  # response_id, item_id: no more audio for the item
EV_AGENT_TRANSCRIPT_DELTA = "agent_transcript_delta"  # item_id, text
EV_AGENT_TRANSCRIPT = "agent_transcript"  # item_id, text: the whole sentence
EV_RESPONSE_DONE = "response_done"  # response_id, status ("completed", "cancelled", ...)
EV_TOOL_CALL = "tool_call"  # item_id (call id), text (name), data (arguments as JSON text)
EV_ERROR = "error"  # code, text (message)
EV_CLOSED = "closed"  # text: why the backend went away (the call must end)


class BackendError(Exception):
    """The backend cannot serve this call (unreachable, refused, misconfigured)."""


class BackendEvent:
    __slots__ = ("type", "item_id", "response_id", "audio", "text", "ms", "code", "data",
                 "t_recv")

    def __init__(self, type, item_id=None, response_id=None, audio=None, text=None, ms=None,
                 code=None, data=None, t_recv=0.0):
        self.type = type
        self.item_id = item_id
        self.response_id = response_id
        self.audio = audio
        self.text = text
        self.ms = ms
        self.code = code
        self.data = data
        self.t_recv = t_recv  # time.monotonic() when the backend received it (latency figures)

    def __repr__(self):
        fields = []
        for name in ("item_id", "response_id", "text", "ms", "code"):
            value = getattr(self, name)
            if value is not None:
                fields.append("%s=%r" % (name, value))
        if self.audio is not None:
            fields.append("audio=%d bytes" % len(self.audio))
        return "BackendEvent(%s%s)" % (self.type, "".join(", " + f for f in fields))


@dataclasses.dataclass
class SessionConfig:
    """What one call's agent is: the per-agent settings plus the codec the call negotiated."""

    codec: str = PCMU
    instructions: str = ""
    voice: str | None = None
    tools: list = dataclasses.field(default_factory=list)
    # None: the backend's default (server VAD); a dict as the OpenAI API takes it, e.g.
    # {"type": "semantic_vad", "eagerness": "auto"} or
    # {"type": "server_vad", "silence_duration_ms": 500}
    turn_detection: dict | None = None
    transcription_model: str | None = None
    call_id: str = ""

    @classmethod
    def for_agent(cls, agent, backend_settings=None, codec=PCMU, call_id=""):
        """From the relay config's Agent (+ BackendSettings): instructions, voice, tools, VAD."""
        return cls(
            codec=codec,
            instructions=getattr(agent, "instructions", "") or "",
            voice=getattr(agent, "voice", None),
            tools=list(getattr(agent, "tools", None) or []),
            turn_detection=getattr(backend_settings, "turn_detection", None),
            transcription_model=getattr(backend_settings, "transcription_model", None),
            call_id=call_id,
        )


class Backend:
    """Base class: what every backend provides. Subclasses override the coroutines."""

    name = "backend"
    formats = (PCMU, PCMA)

    def __init__(self):
        self.on_event = None
        self.native_format = None

    def choose_format(self, codec):
        """The format this backend will use for a call negotiated with codec (G.711 if it can)."""
        if codec in self.formats:
            return codec
        if PCM16_24K in self.formats:
            return PCM16_24K
        raise BackendError("%s backend takes none of %s" % (self.name, codec))

    def emit(self, event):
        if self.on_event is not None:
            self.on_event(event)

    async def connect(self, config):
        raise NotImplementedError

    async def send_audio(self, payload):
        raise NotImplementedError

    async def send_dtmf(self, digit):
        pass

    async def truncate(self, item_id, audio_end_ms):
        pass

    async def cancel_response(self, response_id=None):
        pass

    async def close(self):
        pass


def create_backend(kind, **options):
    """A new backend for one call: kind "openai" (options: api_key, url, model,
    connect_timeout, client) or "echo" (options: format, threshold_dbfs, hangover_ms...)."""
    if kind == "openai":
        from .openai import OpenAIRealtimeBackend

        return OpenAIRealtimeBackend(**options)
    if kind == "echo":
        from .echo import EchoBackend

        return EchoBackend(**options)
    raise BackendError("unknown backend %r" % kind)
