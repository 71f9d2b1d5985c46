"""`make bench`: print every benchmark figure, measured in the same run on the same machine.

Each tests/bench/bench_*.py module exposes ``run(report)`` and calls
``report(section, name, value, unit, note="")`` once per figure. Figures that compare against a
reference (the C `audioop` codec, a plain socket round trip...) measure both in this run.
Benchmarks print figures; they never pass or fail on speed. ``--only NAME`` runs one module.
"""

import argparse
import importlib.util
import os
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
for path in (os.path.join(ROOT, "modules"), os.path.join(ROOT, "tests", "lib"), HERE):
    if path not in sys.path:
        sys.path.insert(0, path)


class Table:
    def __init__(self):
        self.rows = []

    def __call__(self, section, name, value, unit, note=""):
        self.rows.append((section, name, value, unit, note))
        print("  %-10s %-52s %12s %-10s %s" % (section, name, _fmt(value), unit, note), flush=True)

    def print_summary(self):
        print("\n%-10s %-52s %12s %-10s %s" % ("section", "figure", "value", "unit", "note"))
        print("-" * 110)
        for section, name, value, unit, note in self.rows:
            print("%-10s %-52s %12s %-10s %s" % (section, name, _fmt(value), unit, note))


def _fmt(value):
    if isinstance(value, float):
        return "%.3f" % value if abs(value) < 100 else "%.1f" % value
    return str(value)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", help="run only tests/bench/bench_ONLY.py")
    args = parser.parse_args(argv)
    names = sorted(
        f[:-3] for f in os.listdir(HERE) if f.startswith("bench_") and f.endswith(".py")
    )
    if args.only:
        names = [n for n in names if n == "bench_" + args.only]
    table, failed = Table(), []
    for name in names:
        print("== %s" % name, flush=True)
        start = time.perf_counter()
        try:
            spec = importlib.util.spec_from_file_location(name, os.path.join(HERE, name + ".py"))
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            module.run(table)
        except Exception:
            traceback.print_exc()
            failed.append(name)
        print("   (%.1f s)" % (time.perf_counter() - start), flush=True)
    table.print_summary()
    if failed:
        print("benchmarks that raised: %s" % ", ".join(failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
