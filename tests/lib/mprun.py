# tests/lib/mprun.py: run a test module's functions under MicroPython and report each one.
# Executed by the MicroPython unix port (the pytest plugin in tests/micropython_plugin.py starts
# it): `micropython mprun.py DIR MODULE NAME...`. Each test is a plain function; a raised
# exception is a failure, checks.Skip a skip. Results go to stdout as marker lines the plugin
# parses, with MicroPython's own traceback after a failure.
import sys


def main():
    test_dir, module_name = sys.argv[1], sys.argv[2]
    names = sys.argv[3:]
    sys.path.insert(0, test_dir)
    try:
        module = __import__(module_name)
    except BaseException as e:  # noqa: BLE001 - an import error fails every test of the file
        print("@@@ IMPORTERROR")
        sys.print_exception(e, sys.stdout)
        print("@@@ END")
        return
    for name in names:
        print("@@@ START", name)
        try:
            getattr(module, name)()
        except BaseException as e:  # noqa: BLE001
            if type(e).__name__ == "Skip":
                print("@@@ SKIP", name, e.args[0] if e.args else "")
            else:
                sys.print_exception(e, sys.stdout)
                print("@@@ FAIL", name)
            continue
        print("@@@ PASS", name)
    print("@@@ END")


main()
