"""`doppler` command line (CPython tools layer): each subcommand registers itself in `COMMANDS`."""

from __future__ import annotations

import argparse
import sys

from doppler import serve


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="doppler", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for add in COMMANDS:
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _build_parser().parse_args(argv)
    return int(args.run(args) or 0)


# Each entry adds one subparser and sets `run=` (a function taking the parsed args, returning an exit code).
COMMANDS: list = [serve.add_commands]

if __name__ == "__main__":
    sys.exit(main())
