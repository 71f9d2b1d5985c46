# `sipmote demo` (what `make demo` runs) as a newcomer runs it: a subprocess that sets up the
# relay and the simulated device on 127.0.0.1, talks, hangs up and exits 0 by itself. Offline
# with the echo backend; and with the OpenAI backend pointed at the fake Realtime server.
import asyncio
import os
import sys
import wave

from e2e import FakeAgent, encode, sweep
from fake_realtime import FakeRealtimeServer

from sipmote.demo import SHIPPED_MIC

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SIPMOTE = os.path.join(os.path.dirname(sys.executable), "sipmote")
BOUND_S = 90  # a bound on a hung demo, not a speed requirement


async def run_demo(*args, env=None):
    proc = await asyncio.create_subprocess_exec(
        SIPMOTE, "demo", *args, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT, env=env, cwd=ROOT)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), BOUND_S)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    return proc.returncode, out.decode()


def lines_with(text, *words):
    """The lines of the live log naming each word, in the order the words are given."""
    found, at = [], 0
    lines = text.splitlines()
    for word in words:
        while at < len(lines) and word not in lines[at]:
            at += 1
        assert at < len(lines), "no %r (in order) in:\n%s" % (word, text)
        found.append(lines[at])
    return found


def test_the_offline_demo_talks_barges_in_hangs_up_and_exits_0(work):
    heard = os.path.join(work, "heard.wav")
    # the shipped recording as the microphone: the same path as a machine without espeak-ng
    code, out = asyncio.run(run_demo("--backend", "echo", "--mic", SHIPPED_MIC, "--out", heard))
    assert code == 0, out
    lines_with(out, "call placed: sip:assistant@127.0.0.1", "call up:",
               "caller speech started", "caller speech stopped", "agent audio playing",
               "barge-in: agent stopped after", "hanging up", "call ended", "figures",
               "RTP sent", "added latency", "done: listen to")
    with wave.open(heard) as w:
        assert w.getframerate() == 16000 and w.getnframes() > 16000 * 4


def test_the_demo_with_the_openai_backend_shows_transcripts(work):
    heard = os.path.join(work, "heard.wav")
    agent = FakeAgent(reply=encode("pcmu", sweep(1.0)), transcript="hello from the fake")

    async def scenario():
        async with FakeRealtimeServer() as fake:
            fake.hooks.append(agent.hook)
            env = dict(os.environ, OPENAI_API_KEY="sk-fake-demo-key")
            code, out = await run_demo("--openai-url", fake.url, "--mic", SHIPPED_MIC,
                                       "--out", heard, env=env)
            return code, out, list(fake.invalid)

    code, out, invalid = asyncio.run(scenario())
    assert code == 0, out
    assert invalid == []
    assert "relay (openai backend)" in out
    lines_with(out, "call up:", "caller: utterance 1", "agent: hello from the fake",
               "hung up", "figures")
    assert "sk-fake-demo-key" not in out
