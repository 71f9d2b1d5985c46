# The two-runtime harness itself: the unix port really runs these, viper included.
import sys

from checks import is_micropython, raises

RUNTIMES = ("cpython", "micropython")


def test_each_runtime_reports_itself():
    assert sys.implementation.name in ("cpython", "micropython")


def test_viper_kernel_runs_on_the_unix_port():
    if not is_micropython():
        return
    import gc

    # Compiled here rather than at module level so that CPython never sees viper syntax.
    source = (
        "@micropython.viper\n"
        "def add_one(buf, n: int):\n"
        "    p = ptr8(buf)\n"
        "    for i in range(n):\n"
        "        p[i] = p[i] + 1\n"
    )
    scope = {}
    exec(source, scope)
    add_one = scope["add_one"]
    buf = bytearray(range(200))
    add_one(buf, 200)
    assert buf == bytearray(range(1, 201))
    gc.collect()
    before = gc.mem_alloc()
    add_one(buf, 200)
    assert gc.mem_alloc() - before == 0, (
        "a viper loop over a preallocated buffer allocates nothing"
    )


def test_raises_helper():
    with raises(ValueError, match="bad"):
        raise ValueError("a bad value")
