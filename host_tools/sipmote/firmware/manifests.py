"""Evaluate MicroPython manifest.py files without a MicroPython source tree.

The same commands and semantics as MicroPython's tools/manifestfile.py (freeze mode):
``metadata``, ``include``, ``require``, ``package``, ``module``, ``freeze``, ``c_module``,
``options``; relative paths resolve against the manifest being run; $(MPY_DIR), $(PORT_DIR),
$(BOARD_DIR), $(MPY_LIB_DIR) are substituted when given. Unlike the real tool, a path that
needs a variable we were not given (the port's own manifest, micropython-lib) is recorded as
external instead of failing, and every path we can resolve must exist: this is what lets the
test suite check every manifest here, and lets ``bundle`` take its file list from
firmware/manifest.py.
"""

import os
import re

from . import FirmwareError

_VAR = re.compile(r"\$\((\w+)\)")


class Options:
    """The ``options`` object of an included manifest (keyword arguments of include())."""

    def __init__(self, **kwargs):
        self._kwargs = kwargs
        self._defaults = {}

    def defaults(self, **kwargs):
        self._defaults = kwargs

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return self._kwargs.get(name, self._defaults.get(name))


class Manifest:
    """The result of evaluating a manifest and everything it includes."""

    def __init__(self, path_vars=None):
        self.path_vars = dict(path_vars or {})
        self.files = []  # (full path, target path on the device)
        self.requires = []  # micropython-lib package names
        self.included = []  # manifest files that ran
        self.external = []  # paths naming a variable we were not given
        self.c_modules = []
        self.metadata = {}
        self._visited = set()
        self._dirs = []  # the directory of the manifest being run (a stack)
        self._metadata_set = [False]

    # -- path handling ------------------------------------------------------------------------

    def _resolve(self, path):
        """The absolute path, or None if it needs a variable we do not have."""
        missing = [v for v in _VAR.findall(path) if not self.path_vars.get(v)]
        if missing:
            return None
        path = _VAR.sub(lambda m: self.path_vars[m.group(1)], path)
        return os.path.normpath(os.path.join(self._dirs[-1], path))

    def _fail(self, what):
        raise FirmwareError("%s: %s" % (self._dirs[-1] if self._dirs else "manifest", what))

    def _add(self, full, target):
        if not os.path.isfile(full):
            self._fail("no such file: %s" % full)
        self.files.append((full, target.replace(os.sep, "/")))

    def _walk(self, base, sub, exts):
        top = os.path.join(base, sub) if sub else base
        if not os.path.isdir(top):
            self._fail("no such directory: %s" % top)
        found = 0
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
            for name in sorted(filenames):
                if os.path.splitext(name)[1] in exts:
                    full = os.path.join(dirpath, name)
                    self._add(full, os.path.relpath(full, base))
                    found += 1
        if not found:
            self._fail("%s holds no %s file" % (top, "/".join(exts)))

    # -- the manifest commands ----------------------------------------------------------------

    def _metadata(self, description=None, version=None, license=None, author=None, **extra):
        if self._metadata_set[-1]:
            self._fail("duplicate call to metadata()")
        self._metadata_set[-1] = True
        if len(self._metadata_set) == 1:
            self.metadata = {"description": description, "version": version,
                             "license": license, "author": author}
            self.metadata.update(extra)

    def _include(self, manifest_path, is_require=False, **kwargs):
        if not isinstance(manifest_path, str):
            for m in manifest_path:
                self._include(m, **kwargs)
            return
        full = self._resolve(manifest_path)
        if full is None:
            self.external.append(manifest_path)
            return
        if os.path.isdir(full):
            full = os.path.join(full, "manifest.py")
        if full in self._visited:
            return
        if not os.path.isfile(full):
            self._fail("include: no such manifest: %s" % full)
        self._visited.add(full)
        self.run(full, kwargs, is_require)

    def _require(self, name, version=None, pypi=None, library=None, **kwargs):
        self.requires.append(name)
        lib = self.path_vars.get("MPY_LIB_DIR")
        if not lib:
            return
        for group in ("micropython", "python-stdlib", "python-ecosys"):
            for root, _dirs, files in os.walk(os.path.join(lib, group)):
                if os.path.basename(root) == name and "manifest.py" in files:
                    self._include(os.path.join(root, "manifest.py"), is_require=True, **kwargs)
                    return
        self._fail("require: no package %r in %s" % (name, lib))

    def _package(self, package_path, files=None, base_path=".", opt=None):
        base = self._resolve(base_path)
        if base is None:
            self.external.append(os.path.join(base_path, package_path))
            return
        if files is None:
            self._walk(base, package_path, (".py",))
            return
        for f in files:
            self._add(os.path.join(base, package_path, f), os.path.join(package_path, f))

    def _module(self, module_path, base_path=".", opt=None):
        if not module_path.endswith(".py"):
            self._fail("module must be a .py file: %s" % module_path)
        base = self._resolve(base_path)
        if base is None:
            self.external.append(os.path.join(base_path, module_path))
            return
        self._add(os.path.join(base, module_path), module_path)

    def _freeze(self, path, script=None, opt=None):
        base = self._resolve(path)
        if base is None:
            self.external.append(path)
            return
        scripts = [script] if isinstance(script, str) or script is None else list(script)
        for s in scripts:
            if s is None:
                self._walk(base, None, (".py", ".mpy"))
            elif os.path.isdir(os.path.join(base, s)):
                self._walk(base, s, (".py", ".mpy"))
            else:
                self._add(os.path.join(base, s), s)

    def _c_module(self, module_path):
        full = self._resolve(module_path)
        if full is None:
            self.external.append(module_path)
        elif not os.path.isdir(full):
            self._fail("c_module: no such directory: %s" % full)
        else:
            self.c_modules.append(full)

    def run(self, path, kwargs=None, is_require=False):
        """Execute the manifest file at `path` (and what it includes) into this result."""
        path = os.path.abspath(path)
        self._visited.add(path)
        self.included.append(path)
        api = {
            "metadata": self._metadata, "include": self._include, "require": self._require,
            "package": self._package, "module": self._module, "freeze": self._freeze,
            "freeze_as_mpy": self._freeze, "c_module": self._c_module,
            "options": Options(**(kwargs or {})),
        }
        with open(path) as f:
            source = f.read()
        self._dirs.append(os.path.dirname(path))
        if is_require:
            self._metadata_set.append(False)
        try:
            exec(compile(source, path, "exec"), api)
        except FirmwareError:
            raise
        except Exception as e:  # noqa: BLE001 - a broken manifest, named with its error
            raise FirmwareError("%s: %s: %s" % (path, type(e).__name__, e)) from e
        finally:
            self._dirs.pop()
            if is_require:
                self._metadata_set.pop()
        return self


def evaluate(path, **path_vars):
    """Evaluate the manifest at `path`; raises FirmwareError naming what is wrong."""
    m = Manifest(path_vars)
    m._dirs.append(os.path.dirname(os.path.abspath(path)))
    m.run(path)
    return m
