# When the AI service fails, the caller gets a defined answer and the operator a log line
# that says why (and never the API key): the relay as its operator runs it (`sipmote relay`,
# openai backend, TOML config) called by the device's own SIP stack over loopback.
#   refused connection, TLS certificate not trusted, 401, 429, a session the service refuses
#       -> 503 to the INVITE, "backend unavailable: ..." in the log
#   the WebSocket closed mid-call -> BYE with a Reason header, "call ended: ..." in the log
#   an error event mid-call (rate limit) -> logged, the call goes on
# TLS to the service is verified and nothing in the config turns that off; a plaintext ws://
# URL is refused unless it names this machine.
import asyncio
import datetime
import http
import ssl

import pytest
from security_peers import DEVICE_PASSWORD, LoopbackRelay, SipCaller, free_port

from sipmote.relay import config as relay_config
from sipmote.relay.backends import BackendError, SessionConfig
from sipmote.relay.backends.openai import OpenAIRealtimeBackend, plaintext_problem

API_KEY = "sk-test-NEVER-LOG-ME-0123456789abcdef"


def run(coro):
    return asyncio.run(coro)


def relay_with(tmp_path, url):
    return LoopbackRelay(tmp_path, env={"OPENAI_API_KEY": API_KEY},
                         backend={"kind": "openai", "openai_url": url})


async def call_once(relay, hold_s=1.0, timeout=20.0):
    caller = SipCaller(relay, password=DEVICE_PASSWORD)
    try:
        return await caller.call("assistant", hold_s=hold_s, timeout=timeout)
    finally:
        caller.close()


def assert_no_key(relay, *texts):
    for text in (relay.output(), relay.call_logs()) + texts:
        assert API_KEY not in text
        assert API_KEY[8:] not in text  # not even its tail


async def http_refusing_server(status):
    from websockets.asyncio.server import serve

    def refuse(connection, request):
        response = connection.respond(status, "refused by the test\n")
        if status == http.HTTPStatus.TOO_MANY_REQUESTS:
            response.headers["Retry-After"] = "20"
        return response

    return await serve(lambda ws: ws.close(), "127.0.0.1", 0, process_request=refuse)


@pytest.mark.parametrize("status", [http.HTTPStatus.UNAUTHORIZED,
                                    http.HTTPStatus.TOO_MANY_REQUESTS])
def test_http_refusal_at_connect_is_503(tmp_path, status):
    async def main():
        server = await http_refusing_server(status)
        port = server.sockets[0].getsockname()[1]
        try:
            async with relay_with(tmp_path, "ws://127.0.0.1:%d/v1/realtime" % port) as relay:
                return relay, await call_once(relay)
        finally:
            server.close()
            await server.wait_closed()

    relay, outcome = run(main())
    log = relay.output()
    print("\n%d at connect -> caller %s" % (status, outcome.status))
    assert outcome.status == 503 and "call_failed" in outcome.kinds, outcome.kinds
    assert "backend unavailable" in log and str(int(status)) in log, log[-2000:]
    assert_no_key(relay)


def test_refused_connection_is_503(tmp_path):
    port = free_port(kind=__import__("socket").SOCK_STREAM)  # nobody listens there

    async def main():
        async with relay_with(tmp_path, "ws://127.0.0.1:%d/v1/realtime" % port) as relay:
            return relay, await call_once(relay)

    relay, outcome = run(main())
    print("\nrefused connection -> caller %s" % outcome.status)
    assert outcome.status == 503, outcome.kinds
    assert "backend unavailable: OpenAI Realtime unreachable" in relay.output()
    assert_no_key(relay)


def self_signed_context(tmp_path):
    """A TLS server context with a fresh self-signed certificate for 127.0.0.1."""
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    ip = __import__("ipaddress").ip_address("127.0.0.1")
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ip)]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert_path, key_path)
    return ctx


def test_untrusted_certificate_is_503_not_a_silent_downgrade(tmp_path):
    ctx = self_signed_context(tmp_path)

    async def main():
        from websockets.asyncio.server import serve

        seen = []

        async def handler(ws):
            seen.append(ws.request.headers.get("Authorization"))
            await ws.close()

        server = await serve(handler, "127.0.0.1", 0, ssl=ctx)
        port = server.sockets[0].getsockname()[1]
        try:
            async with relay_with(tmp_path, "wss://127.0.0.1:%d/v1/realtime" % port) as relay:
                return relay, await call_once(relay), seen
        finally:
            server.close()
            await server.wait_closed()

    relay, outcome, seen = run(main())
    print("\nuntrusted TLS certificate -> caller %s" % outcome.status)
    assert outcome.status == 503, outcome.kinds
    assert "certificate verify failed" in relay.output().lower(), relay.output()[-2000:]
    assert seen == []  # the handshake never got as far as sending the key
    assert_no_key(relay)


def test_config_has_no_way_to_turn_tls_verification_off():
    for key in ("verify", "verify_tls", "tls_verify", "ssl_verify", "insecure", "ssl",
                "ca_file", "cert_reqs"):
        with pytest.raises(relay_config.ConfigError, match=key):
            relay_config.from_dict({"backend": {"kind": "openai", key: False}}, environ={})


def test_plaintext_url_to_another_host_is_refused_before_connecting():
    assert plaintext_problem("wss://api.openai.com/v1/realtime") is None
    assert plaintext_problem("ws://127.0.0.1:8080/v1/realtime") is None
    assert plaintext_problem("ws://localhost/v1/realtime") is None
    assert "plaintext ws://" in plaintext_problem("ws://api.openai.com/v1/realtime")
    assert "plaintext http://" in plaintext_problem("http://realtime.invalid/v1")
    # .invalid never resolves (RFC 6761): had the check let it through, connect() would fail
    # on the name, with another message
    backend = OpenAIRealtimeBackend(api_key=API_KEY, url="ws://realtime.invalid/v1/realtime")
    with pytest.raises(BackendError, match="refusing to send the API key over plaintext"):
        run(backend.connect(SessionConfig(codec="pcmu")))


def _fake_server():
    import os
    import sys

    here = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "host")
    if here not in sys.path:
        sys.path.insert(0, here)
    from fake_realtime import FakeRealtimeServer

    return FakeRealtimeServer


def test_refused_session_is_503(tmp_path):
    async def main():
        fake = await _fake_server()(refuse_session=True).start()
        try:
            async with relay_with(tmp_path, fake.url) as relay:
                return relay, await call_once(relay), fake.invalid
        finally:
            await fake.stop()

    relay, outcome, invalid = run(main())
    print("\nsession refused by the service -> caller %s" % outcome.status)
    assert outcome.status == 503 and invalid == []
    assert "refused the session" in relay.output()
    assert_no_key(relay)


def test_websocket_closed_mid_call_ends_with_bye_and_reason(tmp_path):
    async def main():
        fake = await _fake_server()().start()
        try:
            async with relay_with(tmp_path, fake.url) as relay:
                caller_task = asyncio.ensure_future(call_once(relay, hold_s=30))
                conn = await fake.connection(0, timeout=15)
                await conn.wait_for("session.update")
                await asyncio.sleep(1.0)  # the call is up and audio flows
                await conn.error("Rate limit reached for requests", code="rate_limit_exceeded",
                                 error_type="rate_limit_error")
                await asyncio.sleep(0.5)
                await conn.close(1011, "server going away")
                outcome = await caller_task
                return relay, outcome, fake.invalid
        finally:
            await fake.stop()

    relay, outcome, invalid = run(main())
    log = relay.output()
    reason = outcome.bye.get("Reason") if outcome.bye is not None else None
    print("\nWebSocket closed mid-call -> caller got BYE, Reason: %s" % reason)
    assert outcome.status == 200 and outcome.bye is not None, outcome.kinds
    assert "call_ended" in outcome.kinds
    assert reason and "closed the connection" in reason and "1011" in reason, reason
    # the rate-limit error before it was logged and did not end the call by itself
    assert "backend error: Rate limit reached for requests (rate_limit_exceeded)" in log
    assert "call ended: OpenAI Realtime closed the connection" in log, log[-3000:]
    assert invalid == []
    assert_no_key(relay)
