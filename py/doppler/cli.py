"""`doppler` command line (CPython tools layer): each subcommand registers itself in `COMMANDS`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from doppler import generate, serve
from doppler.config import ConfigError, DiffusionConfig, json_schema
from doppler.config.diffusion import RUNTIME_PATH
from doppler.convert import command as convert_command
from doppler.manifest import Manifest, file_problems, load_manifest, summary

# `doppler schema NAME`: the documents whose JSON Schema it prints.
SCHEMAS = {
    "config": (DiffusionConfig, RUNTIME_PATH),
    "manifest": (Manifest, "Doppler model manifest"),
}


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="doppler", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for add in COMMANDS:
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _build_parser().parse_args(argv)
    return int(args.run(args) or 0)


def _validate_manifest(args) -> int:
    try:
        manifest = load_manifest(args.file)
    except ConfigError as error:
        print(error, file=sys.stderr)
        return 1
    problems = list(file_problems(manifest, Path(args.file).parent)) if args.files else []
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 1
    print("OK " + summary(manifest))
    return 0


def _add_validate_manifest(sub) -> None:
    parser = sub.add_parser("validate-manifest", help="check a model manifest; print a summary, or every problem")
    parser.add_argument("file", help="manifest JSON file")
    parser.add_argument("--files", action="store_true",
                        help="also check the files next to it: shards (exist, size, sha256) and tokenizer files")
    parser.set_defaults(run=_validate_manifest)


def _schema(args) -> int:
    cls, title = SCHEMAS[args.document]
    print(json.dumps(json_schema(cls, title), indent=2))
    return 0


def _add_schema(sub) -> None:
    parser = sub.add_parser("schema", help="print the JSON Schema of the config or the manifest")
    parser.add_argument("document", choices=sorted(SCHEMAS))
    parser.set_defaults(run=_schema)


# Each entry adds one subparser and sets `run=` (a function taking the parsed args, returning an exit code).
COMMANDS: list = [serve.add_commands, generate.add_command, _add_validate_manifest, _add_schema,
                  convert_command.add_command]

if __name__ == "__main__":
    sys.exit(main())
