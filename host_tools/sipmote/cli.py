"""The `sipmote` command line.

Each subcommand lives in its own module exposing ``HELP``, ``add_arguments(parser)`` and
``run(args) -> int``; a module that is not there (not yet built) simply adds no subcommand.
"""

import argparse
import importlib
import sys

from . import __version__

# subcommand -> module implementing it
COMMANDS = {
    "relay": "sipmote.relay.command",
    "sim": "sipmote.sim",
    "device": "sipmote.device.command",
    "demo": "sipmote.demo",
}


def build_parser():
    parser = argparse.ArgumentParser(
        prog="sipmote",
        description="ESP32 SIP phones whose far end is an AI voice agent: "
        "relay, simulator, device tools.",
    )
    parser.add_argument("--version", action="version", version="sipmote " + __version__)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as e:
            if e.name and module_name.startswith(e.name):
                continue  # not built yet
            raise
        command = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(command)
        command.set_defaults(run=module.run)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 0
    try:
        return args.run(args) or 0
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
