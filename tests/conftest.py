# Test configuration shared by the whole suite.
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
# The shared core and the device app import as top-level packages, as they do on the board;
# tests/lib holds helpers that tests written once for both runtimes import.
for path in (os.path.join(ROOT, "modules"), os.path.join(HERE, "lib")):
    if path not in sys.path:
        sys.path.insert(0, path)

pytest_plugins = ["micropython_plugin"]
