"""`sipmote relay`: run the relay, or ask a running one to call a device.

    sipmote relay --config relay.toml [--bind ADDR] [--port N] [--backend echo|openai]
                  [--openai-url URL] [--model NAME] [--rtp-ports MIN-MAX] [--calls-dir DIR]
    sipmote relay [--config relay.toml] call DEVICE [--agent NAME]
    sipmote relay [--config relay.toml] status

Without an action the relay serves until SIGINT/SIGTERM; it then hangs up its calls and
unregisters from its PBX. `call` and `status` talk to the running relay over its control
socket (found from the same config, or --control PATH).
"""

import argparse
import asyncio
import gc
import json
import logging
import signal
import sys

from . import config as config_mod
from . import control

HELP = "run the relay that answers SIP calls with an AI voice agent (or: call DEVICE, status)"
log = logging.getLogger("sipmote.relay")


def add_arguments(parser):
    _common(parser, None)
    parser.add_argument("--bind", help="address to listen on for SIP and RTP ([sip].bind)")
    parser.add_argument("--port", type=int, help="SIP UDP port ([sip].port, default 5060)")
    parser.add_argument("--public-address", help="address written into Contact and SDP")
    parser.add_argument("--rtp-ports", metavar="MIN-MAX", type=_port_range, help="RTP port range")
    parser.add_argument(
        "--backend", choices=config_mod.BACKEND_KINDS, help="backend for every agent"
    )
    parser.add_argument("--openai-url", help="Realtime WebSocket URL (a proxy or a local fake)")
    parser.add_argument("--model", help="Realtime model name")
    parser.add_argument("--calls-dir", help="directory for the per-call JSON-lines logs")
    parser.add_argument(
        "--log-level", choices=config_mod.LOG_LEVELS, help="console log level ([logging].level)"
    )
    actions = parser.add_subparsers(dest="relay_action", metavar="ACTION")
    call = actions.add_parser("call", help="ask the running relay to call a registered device")
    call.add_argument("device", help="the device's user name ([[devices]].user)")
    call.add_argument("--agent", help="the agent that talks to it (default: the first agent)")
    call.add_argument("--timeout", type=float, default=60, help="seconds to wait for an answer")
    _common(call, argparse.SUPPRESS)
    status = actions.add_parser("status", help="show the running relay's calls and registrations")
    _common(status, argparse.SUPPRESS)


def _common(parser, default):
    # --config and --control are accepted before or after the action; SUPPRESS keeps the
    # subparser from overwriting a value given before it.
    parser.add_argument("--config", metavar="FILE", default=default, help="relay TOML config")
    parser.add_argument(
        "--control", metavar="PATH", default=default, help="control socket of a running relay"
    )


def _port_range(text):
    lo, sep, hi = text.partition("-")
    if not sep or not lo.isdigit() or not hi.isdigit():
        raise argparse.ArgumentTypeError("expected MIN-MAX, e.g. 20000-20999")
    return int(lo), int(hi)


def load_config(args):
    """The config file (or the defaults) with the flags applied; raises ConfigError."""
    if getattr(args, "config", None):
        cfg = config_mod.load(args.config)
    else:
        cfg = config_mod.from_dict({})
    rtp = getattr(args, "rtp_ports", None) or (None, None)
    config_mod.apply_overrides(
        cfg,
        bind=getattr(args, "bind", None),
        port=getattr(args, "port", None),
        backend=getattr(args, "backend", None),
        openai_url=getattr(args, "openai_url", None),
        model=getattr(args, "model", None),
        rtp_port_min=rtp[0],
        rtp_port_max=rtp[1],
        public_address=getattr(args, "public_address", None),
        calls_dir=getattr(args, "calls_dir", None),
    )
    if getattr(args, "log_level", None):
        cfg.logging.level = args.log_level
    if getattr(args, "control", None):
        cfg.control.socket = args.control
    return cfg


def run(args):
    try:
        cfg = load_config(args)
    except config_mod.ConfigError as e:
        print("sipmote relay: %s" % e, file=sys.stderr)
        return 2
    action = getattr(args, "relay_action", None)
    if action == "call":
        message = {"op": "call", "device": args.device, "agent": args.agent}
        return _client(cfg, message, args.timeout)
    if action == "status":
        return _client(cfg, {"op": "status"}, 10)
    return serve(cfg)


def _client(cfg, message, timeout):
    try:
        reply = asyncio.run(control.request(cfg.control_socket(), message, timeout))
    except OSError as e:
        print("sipmote relay: %s" % e, file=sys.stderr)
        return 1
    if not reply.get("ok"):
        print("sipmote relay: %s" % reply.get("error", "failed"), file=sys.stderr)
        return 1
    reply.pop("ok", None)
    print(json.dumps(reply, indent=2))
    return 0


def setup_logging(level):
    logging.basicConfig(
        level=getattr(logging, level.upper()),
        format="%(asctime)s.%(msecs)03d %(levelname).1s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )


def serve(cfg):
    from .service import Relay  # imported here: `call`/`status` need none of the SIP stack

    setup_logging(cfg.logging.level)
    if config_mod.needs_api_key(cfg) and not cfg.backend.api_key:
        if cfg.backend.openai_url == config_mod.DEFAULT_OPENAI_URL:
            print(
                "sipmote relay: the openai backend needs an API key: set OPENAI_API_KEY or "
                "[backend].api_key (or use --backend echo)",
                file=sys.stderr,
            )
            return 2
    relay = Relay(cfg)

    async def main():
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, stop.set)
            except (NotImplementedError, RuntimeError):
                pass
        await relay.start()
        # Everything allocated at start-up (modules, config, sockets) is long-lived: move it out
        # of the collector's view so that a full collection does not stall the event loop for
        # tens of milliseconds, two frames on every call (measured by tests/bench/bench_relay.py).
        gc.freeze()
        try:
            await stop.wait()
        finally:
            log.info("stopping: hanging up %d call(s)", len(relay.calls))
            await relay.stop()

    try:
        asyncio.run(main())
    except OSError as e:
        print("sipmote relay: %s" % e, file=sys.stderr)
        return 1
    return 0
