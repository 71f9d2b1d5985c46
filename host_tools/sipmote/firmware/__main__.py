"""python -m sipmote.firmware COMMAND: the Makefile's firmware targets.

    firmware --board NAME [--micropython DIR]   make firmware BOARD=NAME [MICROPY_DIR=DIR]
    bundle --arch ARCH [--out DIR]             make bundle ARCH=xtensawin|rv32imc|x64
    romfs --board NAME [--out DIR]             make romfs BOARD=NAME
    manifest FILE                              list what a manifest.py freezes
    package-json                               regenerate package.json (mip) from it
    typecheck                                  mypy over the device app with ESP32 stubs
"""

import argparse
import os
import sys

from . import FirmwareError


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m sipmote.firmware")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("firmware", help="build a firmware image (needs MicroPython + ESP-IDF)")
    p.add_argument("--board", required=True)
    p.add_argument("--micropython", default=os.environ.get("MICROPY_DIR"), metavar="DIR")
    p = sub.add_parser("bundle", help="cross-compile the device modules to .mpy")
    p.add_argument("--arch", required=True)
    p.add_argument("--out", metavar="DIR", help="default build/bundle")
    p = sub.add_parser("romfs", help="a ROMFS image of the board's bundle")
    p.add_argument("--board", required=True)
    p.add_argument("--out", metavar="DIR", help="default build/")
    p = sub.add_parser("manifest", help="evaluate a manifest.py and list its files")
    p.add_argument("file")
    sub.add_parser("typecheck", help="mypy over modules/phone against the ESP32 stubs")
    sub.add_parser("package-json", help="regenerate package.json (mip) from the manifest")
    args = parser.parse_args(argv)
    try:
        if args.command == "firmware":
            from .build import build

            build(args.board, args.micropython)
        elif args.command == "bundle":
            from .bundle import build_bundle

            build_bundle(args.arch, args.out)
        elif args.command == "romfs":
            from .bundle import romfs_for_board

            romfs_for_board(args.board, args.out)
        elif args.command == "manifest":
            from .manifests import evaluate

            folder = os.path.dirname(os.path.abspath(args.file))
            board = os.path.isfile(os.path.join(folder, "mpconfigboard.cmake"))
            m = evaluate(args.file, **({"BOARD_DIR": folder} if board else {}))
            for full, target in m.files:
                print("%-40s %s" % (target, full))
            for name in m.requires:
                print("%-40s micropython-lib" % name)
            for path in m.external:
                print("%-40s (not resolved here)" % path)
        elif args.command == "package-json":
            from . import ROOT
            from .bundle import package_json_text

            with open(os.path.join(ROOT, "package.json"), "w") as f:
                f.write(package_json_text())
            print("wrote package.json")
        elif args.command == "typecheck":
            from .typecheck import run

            return run()
    except FirmwareError as e:
        print("error: %s" % e, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
