"""Echo backend: offline, no API key. Plays each caller utterance back as the agent's voice.

Voice activity by energy: each chunk of caller audio is decoded (G.711 via the numpy tables,
or taken as PCM16) and its RMS level compared with ``threshold_dbfs``. ``start_ms`` of loud
audio starts an utterance (``speech_started``, with ``preroll_ms`` of the audio before it kept
so the first syllable is not clipped); ``hangover_ms`` of quiet ends it (``speech_stopped``),
then the utterance goes back as one response: ``response_created``, the audio in
``chunk_ms`` bursts (as a realtime service sends it: faster than real time), ``agent_audio_done``,
``response_done``. In G.711 mode the bytes played back are exactly the caller's payloads, so a
test can compare them bit for bit. The events are those of the OpenAI backend, so barge-in,
truncation and logging work the same way offline.

With ``format="pcm16_24k"`` the backend asks the relay for 24 kHz PCM and answers in it: the
relay's conversion path (resample.py) then runs end to end.
"""

import math

import numpy as np

from .. import g711_tables
from . import (
    EV_AGENT_AUDIO,
    EV_AGENT_AUDIO_DONE,
    EV_AGENT_TRANSCRIPT,
    EV_READY,
    EV_RESPONSE_CREATED,
    EV_RESPONSE_DONE,
    EV_SPEECH_STARTED,
    EV_SPEECH_STOPPED,
    PCM16_24K,
    PCMA,
    PCMU,
    Backend,
    BackendError,
    BackendEvent,
)


class EchoBackend(Backend):
    name = "echo"

    def __init__(self, format="g711", threshold_dbfs=-40.0, start_ms=60, hangover_ms=500,
                 preroll_ms=200, tail_ms=100, max_utterance_ms=10000, chunk_ms=100):
        super().__init__()
        if format == "g711":
            self.formats = (PCMU, PCMA)
        elif format == PCM16_24K:
            self.formats = (PCM16_24K,)
        else:
            raise BackendError("echo backend format must be 'g711' or 'pcm16_24k'")
        self.threshold = 32768.0 * 10 ** (threshold_dbfs / 20.0)
        self.start_ms = start_ms
        self.hangover_ms = hangover_ms
        self.preroll_ms = preroll_ms
        self.tail_ms = tail_ms
        self.max_utterance_ms = max_utterance_ms
        self.chunk_ms = chunk_ms
        self.codec = None
        self.rate = 8000
        self.bytes_per_ms = 8
        self.truncations = []  # (item_id, audio_end_ms) the relay sent: what the caller heard
        self.cancels = []
        self.dtmf = []
        self._position_ms = 0.0  # caller audio received so far
        self._preroll = []  # [(bytes, ms)] kept while idle
        self._preroll_ms = 0.0
        self._utterance = None  # [(bytes, ms, loud)] while the caller talks
        self._loud_ms = 0.0
        self._quiet_ms = 0.0
        self._count = 0
        self._closed = True

    async def connect(self, config):
        self.native_format = self.choose_format(config.codec)
        self.codec = config.codec
        if self.native_format == PCM16_24K:
            self.rate, self.bytes_per_ms = 24000, 48
        self._closed = False
        self.emit(BackendEvent(EV_READY))

    async def send_audio(self, payload):
        if self._closed or not payload:
            return
        payload = bytes(payload)
        ms = len(payload) / self.bytes_per_ms
        loud = self._rms(payload) >= self.threshold
        start_ms = self._position_ms
        self._position_ms += ms
        if self._utterance is None:
            self._preroll.append((payload, ms))
            self._preroll_ms += ms
            while self._preroll and self._preroll_ms - self._preroll[0][1] >= self.preroll_ms:
                self._preroll_ms -= self._preroll.pop(0)[1]
            self._loud_ms = self._loud_ms + ms if loud else 0.0
            if self._loud_ms >= self.start_ms:
                self._count += 1
                self._item = "echo_in_%d" % self._count
                self._utterance = [(p, m, True) for p, m in self._preroll]
                self._utterance_ms = self._preroll_ms
                self._preroll, self._preroll_ms = [], 0.0
                self._quiet_ms = 0.0
                at = max(0, int(start_ms + ms - self._loud_ms))
                self.emit(BackendEvent(EV_SPEECH_STARTED, item_id=self._item, ms=at))
            return
        self._utterance.append((payload, ms, loud))
        self._utterance_ms += ms
        self._quiet_ms = 0.0 if loud else self._quiet_ms + ms
        if self._quiet_ms >= self.hangover_ms or self._utterance_ms >= self.max_utterance_ms:
            self.emit(BackendEvent(EV_SPEECH_STOPPED, item_id=self._item,
                                   ms=int(self._position_ms)))
            utterance, self._utterance = self._utterance, None
            self._loud_ms = 0.0
            self._play_back(utterance)

    async def send_dtmf(self, digit):
        self.dtmf.append(digit)

    async def truncate(self, item_id, audio_end_ms):
        self.truncations.append((item_id, audio_end_ms))

    async def cancel_response(self, response_id=None):
        self.cancels.append(response_id)

    async def close(self):
        self._closed = True

    def _rms(self, payload):
        if self.native_format == PCM16_24K:
            samples = np.frombuffer(payload[: len(payload) & ~1], dtype="<i2")
        else:
            samples = g711_tables.decode(self.codec, payload)
        if not len(samples):
            return 0.0
        x = samples.astype(np.float64)
        return math.sqrt(float(np.dot(x, x)) / len(x))

    def _play_back(self, utterance):
        # keep tail_ms after the last loud chunk: the hangover silence is not worth repeating
        last_loud = max((i for i, (_, _, loud) in enumerate(utterance) if loud), default=-1)
        end, tail = last_loud + 1, 0.0
        while end < len(utterance) and tail < self.tail_ms:
            tail += utterance[end][1]
            end += 1
        audio = b"".join(p for p, _, _ in utterance[:end])
        response_id = "echo_resp_%d" % self._count
        item_id = "echo_out_%d" % self._count
        self.emit(BackendEvent(EV_RESPONSE_CREATED, response_id=response_id))
        step = max(2, int(self.chunk_ms * self.bytes_per_ms) & ~1)
        for pos in range(0, len(audio), step):
            self.emit(BackendEvent(EV_AGENT_AUDIO, item_id=item_id, response_id=response_id,
                                   audio=audio[pos : pos + step]))
        self.emit(BackendEvent(EV_AGENT_AUDIO_DONE, item_id=item_id, response_id=response_id))
        self.emit(BackendEvent(EV_AGENT_TRANSCRIPT, item_id=item_id, response_id=response_id,
                               text="(echo of %.1f s)" % (len(audio) / self.bytes_per_ms / 1000)))
        self.emit(BackendEvent(EV_RESPONSE_DONE, response_id=response_id, text="completed"))
