"""OpenAI Realtime (GA protocol) backend, over the official ``openai`` SDK's WebSocket client.

One WebSocket per call: ``AsyncOpenAI(...).realtime.connect(model=...)``. ``connect()`` sends
``session.update`` with ``audio/pcmu`` or ``audio/pcma`` in both directions (the codec the call
negotiated: G.711 passes straight through), turn detection, instructions, voice, tools and
input transcription, then waits for ``session.updated`` (or an ``error``: the call is refused
with BackendError, which the SIP side answers 503).

Hot paths: each caller RTP payload becomes one ``input_audio_buffer.append`` written by the
caller's forwarding task in arrival order; the JSON text is formatted here and handed to the
SDK connection's ``send_raw`` (the SDK's typed helpers re-validate every event, ~20x the cost,
which matters at 50 events/s per call). Server events are read raw (``recv_bytes``) and decoded
with ``json`` straight into BackendEvents: the names and fields are those of
``openai.types.realtime`` (``response.output_audio.delta``, ``input_audio_buffer.speech_started``,
...), which the fake server in tests/host/fake_realtime.py checks against the SDK's models.

The API key comes from the ``api_key`` option or ``OPENAI_API_KEY``; it is never logged or put
in an error message. ``url`` is the Realtime endpoint (``wss://api.openai.com/v1/realtime`` by
default; a proxy or a local fake for tests); TLS certificates are verified unless an ``ssl``
context says otherwise (only code can pass one: the relay's config cannot), and a plaintext
``ws://`` URL is refused unless it names this machine (``plaintext_problem``). The SDK's
automatic reconnection stays off: a closed WebSocket ends the call (``EV_CLOSED``), and the SIP
side hangs up with BYE.
"""

import asyncio
import base64
import json
import logging
import os
import re
import time
import urllib.parse

from . import (
    EV_AGENT_AUDIO,
    EV_AGENT_AUDIO_DONE,
    EV_AGENT_TRANSCRIPT,
    EV_AGENT_TRANSCRIPT_DELTA,
    EV_CALLER_TRANSCRIPT,
    EV_CLOSED,
    EV_ERROR,
    EV_READY,
    EV_RESPONSE_CREATED,
    EV_RESPONSE_DONE,
    EV_SPEECH_STARTED,
    EV_SPEECH_STOPPED,
    EV_TOOL_CALL,
    PCMA,
    PCMU,
    Backend,
    BackendError,
    BackendEvent,
)

log = logging.getLogger("sipmote.relay.openai")

DEFAULT_URL = "wss://api.openai.com/v1/realtime"
DEFAULT_MODEL = "gpt-realtime"
_AUDIO_TYPE = {PCMU: "audio/pcmu", PCMA: "audio/pcma"}
_APPEND_HEAD = '{"type":"input_audio_buffer.append","audio":"'
_CLOSE_TIMEOUT_S = 2.0


class _RedactSecrets(logging.Filter):
    """websockets logs the handshake headers at DEBUG, Authorization included: mask it."""

    _BEARER = re.compile(r"(Bearer\s+)\S+")

    def filter(self, record):
        args = record.args
        if isinstance(args, tuple) and len(args) >= 2 and isinstance(args[0], str) and (
            args[0].lower() in ("authorization", "api-key", "openai-api-key")
        ):
            record.args = (args[0], "[redacted]") + args[2:]
        elif "Bearer" in str(record.msg):
            record.msg = self._BEARER.sub(r"\1[redacted]", str(record.msg))
        return True


# The WebSocket library's logger for our connections: its records carry no secret.
ws_log = logging.getLogger("sipmote.relay.openai.websocket")
ws_log.addFilter(_RedactSecrets())


def websocket_base_url(url):
    """The SDK appends "/realtime" to its websocket_base_url: accept the full endpoint URL."""
    path, sep, query = url.partition("?")
    path = path.rstrip("/")
    if path.endswith("/realtime"):
        path = path[: -len("/realtime")]
    return path + sep + query


def plaintext_problem(url):
    """Why the API key must not be sent to `url`, or None. wss:// is TLS with the
    certificate verified (nothing in the relay's config can turn that off); plaintext ws://
    (or http://) is accepted only to this machine (a local proxy, a test's fake server), so a
    typo in the scheme cannot silently send the key in clear over the network."""
    scheme = url.partition("://")[0].lower()
    if scheme in ("wss", "https"):
        return None
    host = (urllib.parse.urlsplit(url).hostname or "").lower()
    if host == "localhost" or host == "::1" or host.startswith("127."):
        return None
    return ("refusing to send the API key over plaintext %s:// to %s: use wss://"
            % (scheme, host or "?"))


def session_update(config, audio_format):
    """The `session` object of session.update for one call (GA RealtimeSessionCreateRequest)."""
    fmt = {"type": _AUDIO_TYPE[audio_format]}
    audio_in = {"format": fmt}
    if config.turn_detection is not None:
        audio_in["turn_detection"] = dict(config.turn_detection)
    if config.transcription_model:
        audio_in["transcription"] = {"model": config.transcription_model}
    audio_out = {"format": dict(fmt)}
    if config.voice:
        audio_out["voice"] = config.voice
    session = {
        "type": "realtime",
        "output_modalities": ["audio"],
        "audio": {"input": audio_in, "output": audio_out},
    }
    if config.instructions:
        session["instructions"] = config.instructions
    if config.tools:
        session["tools"] = [dict({"type": "function"}, **tool) for tool in config.tools]
    return session


class OpenAIRealtimeBackend(Backend):
    name = "openai"
    formats = (PCMU, PCMA)

    def __init__(self, api_key=None, url=DEFAULT_URL, model=DEFAULT_MODEL, connect_timeout=10.0,
                 client=None, ssl=None, dtmf_response=True):
        super().__init__()
        self._api_key = api_key
        self.url = url or DEFAULT_URL
        self.model = model or DEFAULT_MODEL
        self.connect_timeout = connect_timeout
        self._client = client
        self._own_client = client is None
        self._ssl = ssl
        self.dtmf_response = dtmf_response
        self._conn = None
        self._reader = None
        self._ready = None
        self._closing = False
        self._closed_reason = None
        self.responding = None  # the response being generated (response.created .. done)
        self.events_received = 0

    def __repr__(self):  # never shows the key
        return "OpenAIRealtimeBackend(url=%r, model=%r)" % (self.url, self.model)

    async def connect(self, config):
        import websockets
        from openai import AsyncOpenAI, OpenAIError

        self.native_format = self.choose_format(config.codec)
        problem = plaintext_problem(self.url)
        if problem is not None:
            raise BackendError(problem)
        if self._client is None:
            api_key = self._api_key or os.environ.get("OPENAI_API_KEY")
            if not api_key:
                raise BackendError("no OpenAI API key: set OPENAI_API_KEY or [backend].api_key")
            self._client = AsyncOpenAI(
                api_key=api_key, websocket_base_url=websocket_base_url(self.url), max_retries=0
            )
        options = {"open_timeout": self.connect_timeout, "close_timeout": _CLOSE_TIMEOUT_S,
                   "logger": ws_log}
        if self._ssl is not None:
            options["ssl"] = self._ssl
        loop = asyncio.get_running_loop()
        self._ready = loop.create_future()
        try:
            manager = self._client.realtime.connect(
                model=self.model, websocket_connection_options=options
            )
            self._conn = await asyncio.wait_for(manager.enter(), self.connect_timeout)
            self._reader = asyncio.create_task(self._read(), name="openai-reader")
            await self._conn.session.update(session=session_update(config, self.native_format))
            await asyncio.wait_for(asyncio.shield(self._ready), self.connect_timeout)
        except asyncio.TimeoutError:
            await self.close()
            raise BackendError(
                "OpenAI Realtime: no answer within %gs" % self.connect_timeout
            ) from None
        except (OSError, OpenAIError, websockets.exceptions.WebSocketException) as e:
            await self.close()
            raise BackendError("OpenAI Realtime unreachable: %s" % _describe(e)) from None
        except BackendError:
            await self.close()
            raise

    async def send_audio(self, payload):
        await self._conn.send_raw(
            _APPEND_HEAD + base64.b64encode(payload).decode("ascii") + '"}'
        )

    async def send_dtmf(self, digit):
        text = "[The caller pressed the telephone key %s]" % digit
        await self._send({
            "type": "conversation.item.create",
            "item": {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": text}],
            },
        })
        if self.dtmf_response and self.responding is None:
            await self._send({"type": "response.create"})

    async def send_tool_result(self, call_id, output):
        await self._send({
            "type": "conversation.item.create",
            "item": {"type": "function_call_output", "call_id": call_id, "output": output},
        })
        await self._send({"type": "response.create"})

    async def truncate(self, item_id, audio_end_ms):
        await self._send({
            "type": "conversation.item.truncate",
            "item_id": item_id,
            "content_index": 0,
            "audio_end_ms": int(audio_end_ms),
        })

    async def cancel_response(self, response_id=None):
        event = {"type": "response.cancel"}
        if response_id:
            event["response_id"] = response_id
        await self._send(event)

    async def close(self):
        self._closing = True
        reader, self._reader = self._reader, None
        if reader is not None and reader is not asyncio.current_task():
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                await asyncio.wait_for(conn.close(), _CLOSE_TIMEOUT_S + 1)
            except Exception:
                pass
        client, self._client = self._client, None
        if client is not None and self._own_client:
            try:
                await client.close()
            except Exception:
                pass

    async def _send(self, event):
        if self._conn is None:
            raise BackendError("OpenAI Realtime connection is closed")
        await self._conn.send_raw(json.dumps(event))

    # -- receiving -----------------------------------------------------------------------------

    async def _read(self):
        from websockets.exceptions import ConnectionClosed

        reason = "OpenAI Realtime closed the connection"
        try:
            conn = self._conn
            while True:
                raw = await conn.recv_bytes()
                t_recv = time.monotonic()
                self.events_received += 1
                try:
                    event = json.loads(raw)
                except ValueError:
                    log.warning("undecodable server event (%d bytes) dropped", len(raw))
                    continue
                if isinstance(event, dict):
                    self._dispatch(event, t_recv)
        except ConnectionClosed as e:
            reason = "OpenAI Realtime closed the connection (%s)" % _close_text(e)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # a bug or a transport failure: the call cannot go on
            reason = "OpenAI Realtime connection failed: %s" % _describe(e)
        self._finish(reason)

    def _finish(self, reason):
        self._closed_reason = reason
        if self._ready is not None and not self._ready.done():
            self._ready.set_exception(BackendError(reason))
            self._ready.exception()  # retrieved: connect() reports it
        if not self._closing:
            self.emit(BackendEvent(EV_CLOSED, text=reason))

    def _dispatch(self, ev, t_recv):
        kind = ev.get("type")
        if kind == "response.output_audio.delta":
            try:
                audio = base64.b64decode(ev.get("delta") or "")
            except ValueError:
                log.warning("output_audio.delta with invalid base64 dropped")
                return
            self.emit(BackendEvent(EV_AGENT_AUDIO, item_id=ev.get("item_id"),
                                   response_id=ev.get("response_id"), audio=audio,
                                   t_recv=t_recv))
        elif kind == "input_audio_buffer.speech_started":
            self.emit(BackendEvent(EV_SPEECH_STARTED, item_id=ev.get("item_id"),
                                   ms=ev.get("audio_start_ms"), t_recv=t_recv))
        elif kind == "input_audio_buffer.speech_stopped":
            self.emit(BackendEvent(EV_SPEECH_STOPPED, item_id=ev.get("item_id"),
                                   ms=ev.get("audio_end_ms"), t_recv=t_recv))
        elif kind == "response.output_audio.done":
            self.emit(BackendEvent(EV_AGENT_AUDIO_DONE, item_id=ev.get("item_id"),
                                   response_id=ev.get("response_id"), t_recv=t_recv))
        elif kind == "response.created":
            response_id = _response_id(ev)
            self.responding = response_id
            self.emit(BackendEvent(EV_RESPONSE_CREATED, response_id=response_id, t_recv=t_recv))
        elif kind == "response.done":
            response = ev.get("response") or {}
            response_id = _response_id(ev)
            if self.responding == response_id:
                self.responding = None
            self.emit(BackendEvent(EV_RESPONSE_DONE, response_id=response_id,
                                   text=response.get("status"), t_recv=t_recv))
        elif kind == "response.output_audio_transcript.delta":
            self.emit(BackendEvent(EV_AGENT_TRANSCRIPT_DELTA, item_id=ev.get("item_id"),
                                   text=ev.get("delta", ""), t_recv=t_recv))
        elif kind == "response.output_audio_transcript.done":
            self.emit(BackendEvent(EV_AGENT_TRANSCRIPT, item_id=ev.get("item_id"),
                                   response_id=ev.get("response_id"),
                                   text=ev.get("transcript", ""), t_recv=t_recv))
        elif kind == "conversation.item.input_audio_transcription.completed":
            self.emit(BackendEvent(EV_CALLER_TRANSCRIPT, item_id=ev.get("item_id"),
                                   text=ev.get("transcript", ""), t_recv=t_recv))
        elif kind == "response.function_call_arguments.done":
            self.emit(BackendEvent(EV_TOOL_CALL, item_id=ev.get("call_id"), text=ev.get("name"),
                                   data=ev.get("arguments", ""), t_recv=t_recv))
        elif kind == "session.updated":
            if self._ready is not None and not self._ready.done():
                self._ready.set_result(None)
                self.emit(BackendEvent(EV_READY, t_recv=t_recv))
        elif kind == "error":
            err = ev.get("error") or {}
            code = err.get("code") or err.get("type")
            message = err.get("message") or "unknown error"
            if self._ready is not None and not self._ready.done():
                self._ready.set_exception(BackendError("OpenAI Realtime refused the session: "
                                                       "%s (%s)" % (message, code)))
                self._ready.exception()
            self.emit(BackendEvent(EV_ERROR, code=code, text=message, t_recv=t_recv))


def _response_id(ev):
    response = ev.get("response")
    return response.get("id") if isinstance(response, dict) else None


def _close_text(exc):
    rcvd = getattr(exc, "rcvd", None)
    if rcvd is None:
        return "no close frame"
    return "code %d%s" % (rcvd.code, (", " + rcvd.reason) if rcvd.reason else "")


def _describe(exc):
    text = str(exc) or type(exc).__name__
    return text[:200]
