# The relay's media half against a fake OpenAI Realtime server that validates every client
# event with the openai SDK's own models: audio pass-through, pacing, barge-in, failures.
import asyncio
import json
import logging
import socket

import pytest
import websockets
from fake_realtime import CLIENT_EVENTS, FakeRealtimeServer, InvalidEvent, validate
from rtp_peer import RtpPeer

from sipmote.relay.backends import BackendError, SessionConfig, create_backend
from sipmote.relay.media import STATIC_PT, MediaSession

API_KEY = "sk-test-DO-NOT-LOG-0123456789"


def run(coro, timeout=30):
    return asyncio.run(asyncio.wait_for(coro, timeout))


class Call:
    """A fake server, a caller RTP peer and a MediaSession between them."""

    def __init__(self, codec="pcmu", config=None, **session_options):
        self.codec = codec
        self.config = config or SessionConfig(codec=codec, instructions="Be brief.",
                                              voice="marin")
        self.session_options = session_options

    async def __aenter__(self):
        self.server = await FakeRealtimeServer().start()
        self.peer = await RtpPeer.open(pt=STATIC_PT[self.codec])
        self.backend = create_backend("openai", api_key=API_KEY, url=self.server.url,
                                      model="gpt-realtime")
        self.session = MediaSession(("127.0.0.1", 0), self.peer.address, self.codec,
                                    self.backend, self.config, call_id="test-call",
                                    **self.session_options)
        await self.session.start()
        self.peer.dest = ("127.0.0.1", self.session.local_port)
        self.conn = await self.server.connection(0)
        return self

    async def __aexit__(self, *exc):
        await self.session.stop("test over")
        self.peer.close()
        await self.server.stop()
        assert self.server.invalid == []  # every event the relay sent was valid


def pattern(n, seed=0):
    """Audio bytes that are never the silence code, distinct per position."""
    return bytes((seed * 7 + i) % 200 + 1 for i in range(n))


@pytest.mark.parametrize("codec", ["pcmu", "pcma"])
def test_session_update_asks_for_the_negotiated_g711_both_ways(codec):
    config = SessionConfig(codec=codec, instructions="Answer in French.", voice="cedar",
                           turn_detection={"type": "semantic_vad", "eagerness": "high"},
                           transcription_model="gpt-4o-mini-transcribe",
                           tools=[{"name": "lights", "description": "Switch the lights",
                                   "parameters": {"type": "object", "properties": {}}}])

    async def main():
        async with Call(codec, config) as call:
            s = call.conn.session
            fmt = {"type": "audio/" + codec}
            assert s["audio"]["input"]["format"] == fmt
            assert s["audio"]["output"]["format"] == fmt
            assert s["audio"]["output"]["voice"] == "cedar"
            assert s["audio"]["input"]["turn_detection"] == {"type": "semantic_vad",
                                                             "eagerness": "high"}
            assert s["audio"]["input"]["transcription"] == {"model": "gpt-4o-mini-transcribe"}
            assert s["instructions"] == "Answer in French."
            assert s["tools"][0]["type"] == "function" and s["tools"][0]["name"] == "lights"
            assert call.conn.query["model"] == "gpt-realtime"
            assert call.conn.path == "/v1/realtime"
            assert call.conn.authorization == "Bearer " + API_KEY

    run(main())


def test_caller_payloads_reach_the_server_exactly_and_in_order():
    async def main():
        async with Call() as call:
            peer = call.peer
            sent = []
            loop = asyncio.get_running_loop()
            foreign, _ = await loop.create_datagram_endpoint(  # same stream, another host
                asyncio.DatagramProtocol, local_addr=("127.0.0.2", 0))
            for i in range(120):
                payload = pattern(160, i)
                if i % 10 == 3:
                    peer.send_raw(b"\x80\x00\x01")  # truncated header
                    peer.send_raw(peer.packet(b"\x00" * 160, pt=18))  # G.729: not negotiated
                    peer.send_raw(peer.packet(b"\x01" * 160, seq=peer.seq - 1))  # duplicate
                    foreign.sendto(peer.packet(b"\x02" * 160), peer.dest)
                peer.send(payload)
                sent.append(payload)
                await asyncio.sleep(0.001)
            await call.conn.wait_audio(len(sent) * 160)
            await asyncio.sleep(0.05)
            assert call.conn.appends == sent  # one append per payload, bytes untouched
            stats = call.session.stats
            assert stats["forwarded"] == 120
            assert stats["malformed"] == 12 and stats["wrong_pt"] == 12
            assert stats["out_of_order"] == 12 and stats["foreign"] == 12
            foreign.close()

    run(main())


def test_agent_audio_is_paced_at_20_ms_with_continuous_seq_ts_and_markers():
    async def main():
        async with Call() as call:
            first = pattern(16000, 1)  # 2 s, arriving in irregular bursts
            await call.conn.respond(first, chunk_sizes=(4000, 17, 1603, 800, 3))
            await call.peer.wait_packets(100)
            await asyncio.sleep(0.3)  # silence between two responses
            second = pattern(1600, 2)
            await call.conn.respond(second, chunk_sizes=(1600,))
            await call.peer.wait_packets(110)
            await asyncio.sleep(0.1)
            got = call.peer.received
            assert len(got) == 110
            assert {p.pt for p in got} == {0} and len({p.ssrc for p in got}) == 1
            assert all((b.seq - a.seq) & 0xFFFF == 1 for a, b in zip(got, got[1:]))
            assert [p.marker for p in got] == [1] + [0] * 99 + [1] + [0] * 9
            assert all((b.ts - a.ts) & 0xFFFFFFFF == 160 for a, b in zip(got[:100], got[1:100]))
            assert b"".join(p.payload for p in got[:100]) == first
            assert b"".join(p.payload for p in got[100:]) == second
            # mean spacing from receive times: a generous band, not a tight timing assert
            mean = (got[99].t - got[0].t) / 99
            assert 0.015 < mean < 0.025
            # across the silence the timestamp advanced with the clock, in whole frames
            jump = (got[100].ts - got[99].ts) & 0xFFFFFFFF
            assert jump % 160 == 0 and jump > 160
            assert abs(jump / 8000 - (got[100].t - got[99].t)) < 0.1

    run(main())


def _agent_bytes(packets):
    return sum(len(p.payload.rstrip(b"\xff")) for p in packets)


@pytest.mark.parametrize("finished", [False, True])
def test_barge_in_stops_playback_and_truncates_at_what_was_sent(finished):
    async def main():
        async with Call() as call:
            audio = pattern(40000, 3)  # 5 s
            response_id, item_id = await call.conn.respond(audio, chunk_sizes=(2400,),
                                                           finish=finished)
            await call.peer.wait_packets(30)
            n_before = len(call.peer.received)
            await call.conn.speech_started(audio_start_ms=1234)
            truncate = await call.conn.wait_for("conversation.item.truncate")
            await asyncio.sleep(0.2)
            received = list(call.peer.received)
            await asyncio.sleep(0.2)
            assert len(call.peer.received) == len(received)  # stopped for good
            # at once (test_relay_playout checks "the next tick sends nothing" exactly; here
            # only a loose bound, as other processes share the machine)
            assert len(received) - n_before <= 5
            assert truncate["item_id"] == item_id and truncate["content_index"] == 0
            heard = _agent_bytes(received)
            assert truncate["audio_end_ms"] == heard // 8  # exactly what went out as RTP
            assert b"".join(p.payload for p in received) == audio[:heard]
            cancels = [e for e in call.conn.received if e["type"] == "response.cancel"]
            if finished:  # the server had finished the response: nothing to cancel
                assert cancels == []
            else:
                assert cancels == [{"type": "response.cancel", "response_id": response_id}]
            # late audio of the interrupted response is ignored; a new one plays with a marker
            await call.conn.audio_delta(response_id, item_id, pattern(800, 4))
            await call.conn.respond(pattern(800, 5), chunk_sizes=(800,))
            await call.peer.wait_packets(len(received) + 5)
            await asyncio.sleep(0.1)
            new = call.peer.received[len(received):]
            assert len(new) == 5 and new[0].marker == 1
            assert b"".join(p.payload for p in new) == pattern(800, 5)
            assert (new[0].seq - received[-1].seq) & 0xFFFF == 1
            assert call.session.stats["barge_ins"] == 1

    run(main())


def test_backend_closing_mid_call_ends_the_session_with_a_reason():
    async def main():
        ended = []
        async with Call(on_ended=ended.append) as call:
            port = call.session.local_port
            call.peer.send(pattern(160))
            await call.conn.wait_audio(160)
            await call.conn.close(1011, "upstream gone")
            reason = await asyncio.wait_for(call.session.ended, 5)
            assert "1011" in reason and "upstream gone" in reason
            assert ended == [reason]
            # every task and the RTP port released
            assert call.session._forwarder.done() and not call.session._tasks
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind(("127.0.0.1", port))
            sock.close()
            leftover = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            assert all("rtp-to-backend" not in t.get_name() for t in leftover)
            assert all("openai-reader" not in t.get_name() for t in leftover)

    run(main())


def test_refused_session_fails_start_and_releases_the_socket():
    async def main():
        async with FakeRealtimeServer(refuse_session=True) as server:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind(("127.0.0.1", 0))
            backend = create_backend("openai", api_key=API_KEY, url=server.url)
            session = MediaSession(sock, ("127.0.0.1", 9), "pcmu", backend)
            with pytest.raises(BackendError, match="model_not_found"):
                await session.start()
            assert sock.fileno() == -1  # closed
            assert session.ended.done()
            conn = await server.connection(0)
            await asyncio.wait_for(conn.closed.wait(), 5)

    run(main())


def test_unreachable_backend_fails_start_quickly():
    async def main():
        probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()  # nothing listens there now
        backend = create_backend("openai", api_key=API_KEY,
                                 url="ws://127.0.0.1:%d/v1/realtime" % port, connect_timeout=3)
        session = MediaSession(("127.0.0.1", 0), ("127.0.0.1", 9), "pcmu", backend)
        with pytest.raises(BackendError, match="unreachable"):
            await session.start()

    run(main())


def test_missing_api_key_is_a_clear_backend_error(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)

    async def main():
        backend = create_backend("openai", url="ws://127.0.0.1:9/v1/realtime")
        with pytest.raises(BackendError, match="OPENAI_API_KEY"):
            await backend.connect(SessionConfig())

    run(main())


def test_dtmf_reaches_the_agent_as_a_conversation_item():
    async def main():
        async with Call() as call:
            peer = call.peer
            for ts, event, end in [(5000, 7, False), (5000, 7, False), (5000, 7, True),
                                   (5000, 7, True), (9000, 11, True)]:
                payload = bytes([event, 0x8A if end else 0x0A, 0x01, 0x40])
                peer.send_raw(peer.packet(payload, pt=101, ts=ts))
            item = await call.conn.wait_for("conversation.item.create", count=2)
            creates = [e for e in call.conn.received if e["type"] == "conversation.item.create"]
            texts = [e["item"]["content"][0]["text"] for e in creates]
            assert len(texts) == 2 and "7" in texts[0] and "#" in texts[1]
            assert item["item"]["role"] == "user"
            assert call.session.stats["dtmf"] == 2

    run(main())


def test_call_log_has_transcripts_turns_and_figures_and_never_the_key(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)

    async def main():
        async with Call(log_dir=str(tmp_path)) as call:
            item = await call.conn.speech_started()
            for i in range(10):
                call.peer.send(pattern(160, i))
            await call.conn.speech_stopped(item, audio_end_ms=200)
            await call.conn.caller_transcript(item, "what time is it")
            await call.conn.respond(pattern(1600), chunk_sizes=(400,),
                                    transcript="It is noon.")
            await call.peer.wait_packets(10)
            await call.conn.error("something odd", code="odd_thing")
            await asyncio.sleep(0.1)

    run(main())
    files = list(tmp_path.iterdir())
    assert len(files) == 1
    text = files[0].read_text()
    records = [json.loads(line) for line in text.splitlines()]
    events = [r["event"] for r in records]
    for name in ("started", "speech_started", "speech_stopped", "caller_transcript",
                 "response_created", "agent_transcript", "turn", "response_done",
                 "backend_error", "ended"):
        assert name in events
    by = {r["event"]: r for r in records}
    assert by["caller_transcript"]["text"] == "what time is it"
    assert by["agent_transcript"]["text"] == "It is noon."
    assert by["turn"]["speech_stopped_to_first_rtp_ms"] >= 0
    assert by["ended"]["rtp_out"] == 10 and by["ended"]["forwarded"] == 10
    assert by["ended"]["in_latency"]["n"] == 10
    assert all(r["call"] == "test-call" and r["t"] >= 0 for r in records)
    console = caplog.text
    assert "caller: what time is it" in console and "agent: It is noon." in console
    assert API_KEY not in text and API_KEY not in console
    assert "Authorization: [redacted]" in console  # the handshake was logged, masked
    assert API_KEY not in repr(create_backend("openai", api_key=API_KEY))


def test_fake_server_rejects_invalid_client_events():
    # the validation the other tests rely on really fails on bad events
    for bad in [
        {"type": "input_audio_buffer.append"},
        {"type": "conversation.item.truncate", "item_id": "x", "content_index": 0,
         "audio_end_ms": "late"},
        {"type": "response.cancel", "reponse_id": "typo"},
        {"type": "session.update", "session": {"type": "realtime", "audio": {
            "input": {"format": {"type": "g711_ulaw"}}}}},  # the retired beta format name
        {"type": "session.update", "session": {"type": "realtime", "audio": {
            "input": {"format": {"type": "audio/pcmu"}, "vad": True}}}},
        {"type": "response.audio.delta", "delta": ""},
    ]:
        with pytest.raises(InvalidEvent):
            validate(bad, CLIENT_EVENTS)

    async def main():
        async with FakeRealtimeServer() as server:
            async with websockets.connect(server.url + "?model=x") as ws:
                assert json.loads(await ws.recv())["type"] == "session.created"
                await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": "!!"}))
                reply = json.loads(await ws.recv())
                assert reply["type"] == "error" and reply["error"]["code"] == "invalid_event"
            assert len(server.invalid) == 1

    run(main())


def test_tool_call_gets_an_answer_and_a_new_response():
    calls = []

    async def lights(name, arguments):
        calls.append((name, json.loads(arguments)))
        return '{"ok": true}'

    async def main():
        async with Call(tool_handler=lights) as call:
            await call.conn.send({
                "type": "response.function_call_arguments.done", "response_id": "resp_9",
                "item_id": "item_9", "output_index": 0, "call_id": "call_42",
                "name": "lights", "arguments": '{"on": true}',
            })
            item = await call.conn.wait_for("conversation.item.create")
            await call.conn.wait_for("response.create")
            assert item["item"] == {"type": "function_call_output", "call_id": "call_42",
                                    "output": '{"ok": true}'}
            assert calls == [("lights", {"on": True})]

    run(main())


def test_endpoint_url_maps_onto_the_sdk_base_url():
    from sipmote.relay.backends.openai import websocket_base_url

    assert websocket_base_url("wss://api.openai.com/v1/realtime") == "wss://api.openai.com/v1"
    assert websocket_base_url("ws://127.0.0.1:8080/v1/realtime/") == "ws://127.0.0.1:8080/v1"
    assert websocket_base_url("wss://proxy.lan/openai/v1") == "wss://proxy.lan/openai/v1"
    assert websocket_base_url("wss://h/v1/realtime?x=1") == "wss://h/v1?x=1"
