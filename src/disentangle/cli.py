"""The command line: ``python -m disentangle <command>``.

``env`` prints the profile and device that a run would use here and the environment record that
results files carry.
"""

from __future__ import annotations

import argparse
import json
import sys

from disentangle import config


def _env(args: argparse.Namespace) -> int:
    profile = config.resolve_profile(args.profile)
    device = config.get_device(args.device)
    print(json.dumps({"profile": profile, **config.environment(device)}, indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m disentangle", description="The book's tools.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    env = commands.add_parser("env", help="show the profile, device and versions in force")
    env.add_argument("--profile", choices=config.PROFILES, help="override the automatic profile")
    env.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda when available)")
    env.set_defaults(run=_env)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, RuntimeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
