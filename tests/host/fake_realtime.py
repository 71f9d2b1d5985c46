"""A fake OpenAI Realtime (GA) server for the relay's tests and benchmark.

Every event a client sends is validated against the official SDK's models
(``openai.types.realtime.RealtimeClientEvent``: the member model chosen by its ``type``,
validated by pydantic, and no field the model does not know anywhere in the tree: the SDK's
models accept unknown fields silently, a typo must not pass). An invalid event is recorded in
``server.invalid`` (tests assert it stays empty) and answered with an ``error`` event, as the
real service does. The events this fake sends are validated against ``RealtimeServerEvent``
the same way, so a test cannot script an event the real server would never send.

Automatic behaviour (as the real service): ``session.created`` on connect, ``session.updated``
for each ``session.update``, ``conversation.item.truncated`` for a truncate, and for
``response.cancel`` a ``response.done`` (status cancelled) when a scripted response is active,
else an ``error`` with code ``response_cancel_not_active``. Everything else is scripted by the
test through ``FakeConnection`` (speech started/stopped, bursty audio deltas, transcripts,
errors, disconnects).
"""

import asyncio
import base64
import binascii
import itertools
import json
import logging
import typing
import urllib.parse

import pydantic
from openai.types.realtime import RealtimeClientEvent, RealtimeServerEvent
from websockets.asyncio.server import serve


def _members(union_alias):
    """{type literal: model class} for an SDK event union (Annotated[Union[...], ...])."""
    union = typing.get_args(union_alias)[0]
    table = {}
    for model in typing.get_args(union):
        literal = model.model_fields["type"].annotation
        for value in typing.get_args(literal):
            table[value] = model
    return table


# the fake's WebSocket logs stay quiet (at DEBUG they would print the client's Authorization)
_log = logging.getLogger("fake_realtime")
_log.setLevel(logging.INFO)
CLIENT_EVENTS = _members(RealtimeClientEvent)
SERVER_EVENTS = _members(RealtimeServerEvent)


class InvalidEvent(ValueError):
    pass


def _unknown_fields(value, path):
    """Paths of fields the SDK's models stored as 'extra' (unknown to the schema)."""
    found = []
    if isinstance(value, pydantic.BaseModel):
        for key in value.model_extra or {}:
            found.append(path + "." + key)
        for name in type(value).model_fields:
            found += _unknown_fields(getattr(value, name), path + "." + name)
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            found += _unknown_fields(v, "%s[%d]" % (path, i))
    elif isinstance(value, dict):
        for k, v in value.items():
            found += _unknown_fields(v, "%s.%s" % (path, k))
    return found


def validate(event, table):
    """Validate one event (a dict) against the SDK model for its type; return the model."""
    if not isinstance(event, dict):
        raise InvalidEvent("event is not a JSON object")
    model = table.get(event.get("type"))
    if model is None:
        raise InvalidEvent("unknown event type %r" % event.get("type"))
    try:
        parsed = model.model_validate(event)
    except pydantic.ValidationError as e:
        raise InvalidEvent("%s: %s" % (event.get("type"), e)) from None
    extra = _unknown_fields(parsed, event["type"])
    # `session` of a session.update/updated is a union; a field of the other member is extra
    if extra:
        raise InvalidEvent("%s: fields unknown to the SDK: %s" % (event["type"], extra))
    return parsed


class FakeConnection:
    def __init__(self, server, ws):
        self.server = server
        self.ws = ws
        request = ws.request
        url = urllib.parse.urlsplit(request.path)
        self.path = url.path
        self.query = dict(urllib.parse.parse_qsl(url.query))
        self.authorization = request.headers.get("Authorization")
        self.received = []  # every valid client event, as dicts, in order
        self.appends = []  # decoded audio of each input_audio_buffer.append, in order
        self.session = None  # the last session.update's session
        self.active_response = None
        self.closed = asyncio.Event()
        self._ids = itertools.count(1)
        self._arrived = asyncio.Condition()

    @property
    def audio(self):
        return b"".join(self.appends)

    def next_id(self, prefix):
        return "%s_%d" % (prefix, next(self._ids))

    # -- sending (validated) -------------------------------------------------------------------

    async def send(self, event):
        event = dict(event)
        event.setdefault("event_id", self.next_id("event"))
        if self.server.validate:
            validate(event, SERVER_EVENTS)
        await self.ws.send(json.dumps(event))

    async def speech_started(self, item_id=None, audio_start_ms=0):
        item_id = item_id or self.next_id("item")
        await self.send({"type": "input_audio_buffer.speech_started", "item_id": item_id,
                         "audio_start_ms": audio_start_ms})
        return item_id

    async def speech_stopped(self, item_id, audio_end_ms=0):
        await self.send({"type": "input_audio_buffer.speech_stopped", "item_id": item_id,
                         "audio_end_ms": audio_end_ms})

    async def caller_transcript(self, item_id, text):
        await self.send({
            "type": "conversation.item.input_audio_transcription.completed",
            "item_id": item_id, "content_index": 0, "transcript": text,
            "usage": {"type": "duration", "seconds": 1.0},
        })

    async def begin_response(self):
        response_id = self.next_id("resp")
        self.active_response = response_id
        await self.send({"type": "response.created",
                         "response": {"id": response_id, "object": "realtime.response",
                                      "status": "in_progress", "output": []}})
        return response_id

    async def audio_delta(self, response_id, item_id, audio):
        await self.send({
            "type": "response.output_audio.delta", "response_id": response_id,
            "item_id": item_id, "output_index": 0, "content_index": 0,
            "delta": base64.b64encode(audio).decode("ascii"),
        })

    async def audio_done(self, response_id, item_id):
        await self.send({"type": "response.output_audio.done", "response_id": response_id,
                         "item_id": item_id, "output_index": 0, "content_index": 0})

    async def agent_transcript(self, response_id, item_id, text):
        for word in text.split(" "):
            await self.send({
                "type": "response.output_audio_transcript.delta", "response_id": response_id,
                "item_id": item_id, "output_index": 0, "content_index": 0, "delta": word + " ",
            })
        await self.send({
            "type": "response.output_audio_transcript.done", "response_id": response_id,
            "item_id": item_id, "output_index": 0, "content_index": 0, "transcript": text,
        })

    async def end_response(self, response_id, status="completed"):
        if self.active_response == response_id:
            self.active_response = None
        await self.send({"type": "response.done",
                         "response": {"id": response_id, "object": "realtime.response",
                                      "status": status, "output": []}})

    async def respond(self, audio, chunk_sizes=(800,), pause_s=0.0, transcript=None,
                      finish=True):
        """A whole agent response: created, audio in bursts of chunk_sizes bytes (cycled),
        optional pauses between bursts, audio done, transcript, done.
        Returns (response_id, item_id)."""
        response_id = await self.begin_response()
        item_id = self.next_id("item")
        sizes = itertools.cycle(chunk_sizes)
        pos = 0
        while pos < len(audio):
            n = next(sizes)
            await self.audio_delta(response_id, item_id, audio[pos : pos + n])
            pos += n
            if pause_s:
                await asyncio.sleep(pause_s)
            if self.active_response != response_id:  # cancelled meanwhile
                return response_id, item_id
        if finish:
            await self.audio_done(response_id, item_id)
            if transcript:
                await self.agent_transcript(response_id, item_id, transcript)
            await self.end_response(response_id)
        return response_id, item_id

    async def error(self, message, code=None, error_type="invalid_request_error"):
        await self.send({"type": "error",
                         "error": {"type": error_type, "code": code, "message": message}})

    async def close(self, code=1011, reason="fake server closing"):
        await self.ws.close(code, reason)

    # -- receiving -----------------------------------------------------------------------------

    async def wait_for(self, event_type, count=1, timeout=5.0):
        """The count-th received client event of event_type (waits for it)."""
        async def matching():
            async with self._arrived:
                while True:
                    found = [e for e in self.received if e["type"] == event_type]
                    if len(found) >= count:
                        return found[count - 1]
                    await self._arrived.wait()

        return await asyncio.wait_for(matching(), timeout)

    async def wait_audio(self, nbytes, timeout=5.0):
        async def enough():
            async with self._arrived:
                while sum(len(a) for a in self.appends) < nbytes:
                    await self._arrived.wait()

        await asyncio.wait_for(enough(), timeout)

    async def _serve(self):
        await self.send({"type": "session.created",
                         "session": {"type": "realtime", "model": self.query.get("model")}})
        try:
            async for raw in self.ws:
                await self._handle(raw)
        except Exception:  # the client vanished; the test sees it through `closed`
            pass
        finally:
            self.closed.set()
            async with self._arrived:
                self._arrived.notify_all()

    async def _handle(self, raw):
        try:
            event = json.loads(raw)
            if self.server.validate:
                validate(event, CLIENT_EVENTS)
            if event["type"] == "input_audio_buffer.append":
                audio = base64.b64decode(event["audio"], validate=True)
        except (ValueError, InvalidEvent, binascii.Error) as e:
            self.server.invalid.append((raw if isinstance(raw, str) else repr(raw), str(e)))
            await self.error("invalid client event: %s" % str(e)[:300], code="invalid_event")
            return
        kind = event["type"]
        async with self._arrived:
            self.received.append(event)
            if kind == "input_audio_buffer.append":
                self.appends.append(audio)
            self._arrived.notify_all()
        if kind == "session.update":
            self.session = event["session"]
            if self.server.refuse_session:
                await self.error("Invalid model", code="model_not_found")
            else:
                await self.send({"type": "session.updated", "session": event["session"]})
        elif kind == "conversation.item.truncate":
            await self.send({"type": "conversation.item.truncated", "item_id": event["item_id"],
                             "content_index": event["content_index"],
                             "audio_end_ms": event["audio_end_ms"]})
        elif kind == "response.cancel":
            if self.active_response is not None:
                await self.end_response(self.active_response, status="cancelled")
            else:
                await self.error("no active response", code="response_cancel_not_active")
        for hook in self.server.hooks:
            await hook(self, event)


class FakeRealtimeServer:
    """``async with FakeRealtimeServer() as server:`` then point the backend at server.url."""

    def __init__(self, refuse_session=False, validate=True):
        self.validate = validate  # False only for the benchmark: tests always validate
        self.connections = []
        self.invalid = []  # (raw event, why) for every invalid client event
        self.hooks = []  # async hook(connection, event) after each valid client event
        self.refuse_session = refuse_session
        self._server = None
        self._new = asyncio.Condition()
        self._tasks = set()

    @property
    def url(self):
        return "ws://127.0.0.1:%d/v1/realtime" % self.port

    async def start(self):
        self._server = await serve(self._handler, "127.0.0.1", 0, max_size=None,
                                   compression=None, logger=_log)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self):
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self):
        return await self.start()

    async def __aexit__(self, *exc):
        await self.stop()

    async def connection(self, index=0, timeout=5.0):
        async def arrived():
            async with self._new:
                while len(self.connections) <= index:
                    await self._new.wait()
                return self.connections[index]

        return await asyncio.wait_for(arrived(), timeout)

    async def _handler(self, ws):
        conn = FakeConnection(self, ws)
        async with self._new:
            self.connections.append(conn)
            self._new.notify_all()
        await conn._serve()
