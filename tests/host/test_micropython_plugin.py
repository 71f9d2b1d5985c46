# The plugin reports MicroPython failures as failures, with MicroPython's traceback.
import textwrap

pytest_plugins = ["pytester"]


def test_micropython_failures_are_reported(pytester):
    pytester.makeconftest(
        "import sys\nsys.path.insert(0, %r)\npytest_plugins = ['micropython_plugin']\n"
        % __import__("micropython_plugin").LIB
    )
    pytester.makepyfile(
        test_sample=textwrap.dedent("""
        import sys
        RUNTIMES = ("cpython", "micropython")

        def test_passes():
            assert 1 + 1 == 2

        def test_fails_only_on_micropython():
            assert sys.implementation.name != "micropython", "ran under MicroPython"
    """)
    )
    result = pytester.runpytest("-v")
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*test_fails_only_on_micropython[[]micropython[]] FAILED*",
            "*AssertionError: ran under MicroPython*",
        ]
    )


def test_micropython_only_modules_have_no_cpython_items(pytester):
    pytester.makeconftest(
        "import sys\nsys.path.insert(0, %r)\npytest_plugins = ['micropython_plugin']\n"
        % __import__("micropython_plugin").LIB
    )
    pytester.makepyfile(
        test_device=textwrap.dedent("""
        import machine
        RUNTIMES = ("micropython",)

        def test_machine_exists():
            assert hasattr(machine, "mem32")
    """)
    )
    result = pytester.runpytest("-v", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
