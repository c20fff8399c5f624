"""`doppler convert`: a diffusers folder or single-file checkpoint, or seeded random weights, into a model folder."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from doppler.errors import ConvertError
from doppler.manifest import summary

from .presets import PRESETS
from .random_model import random_source
from .sources import open_source
from .writer import DEFAULT_SHARD_MIB, STORAGE, default_model_id, write_model

# Ignored keys shown per reason (the count is always shown).
SHOWN_IGNORED = 3


def add_command(sub) -> None:
    p = sub.add_parser(
        "convert", help="convert a checkpoint (or draw random weights) into a model folder",
        description="doppler convert SRC OUT: SRC is a diffusers folder or a single-file SD 1.x .safetensors "
                    "checkpoint (original LDM key names). doppler convert --random PRESET --seed N OUT: seeded random "
                    "weights. OUT gets manifest.json, shards/ and tokenizer/.")
    p.add_argument("paths", nargs="+", metavar="PATH", help="SRC OUT, or OUT alone with --random")
    p.add_argument("--dtype", choices=tuple(STORAGE), default="f16", help="storage dtype of the weights")
    p.add_argument("--shard-mib", type=float, default=DEFAULT_SHARD_MIB, help="shard size in MiB")
    p.add_argument("--random", choices=sorted(PRESETS), help="write seeded random weights of this architecture")
    p.add_argument("--seed", type=int, help="seed of --random (default 0)")
    p.add_argument("--preset", choices=sorted(PRESETS), default="sd15",
                   help="single files: the architecture, scheduler and tokenizer settings they do not carry")
    p.add_argument("--scheduler-config", type=Path, help="a diffusers scheduler_config.json to use instead")
    p.add_argument("--tokenizer", type=Path, help="a folder with vocab.json and merges.txt to use instead")
    p.add_argument("--id", help="model id (default: from OUT's name)")
    p.add_argument("--name", help="name shown in the app (default: OUT's name)")
    p.add_argument("--force", action="store_true", help="replace OUT if it exists (once the new one is complete)")
    p.set_defaults(run=_run, parser=p)


def _run(args: argparse.Namespace) -> int:
    expected = 1 if args.random else 2
    if len(args.paths) != expected:
        args.parser.error("expected OUT alone with --random" if args.random else "expected SRC OUT")
    if args.seed is not None and not args.random:
        args.parser.error("--seed goes with --random")
    if args.seed is not None and args.seed < 0:
        args.parser.error(f"--seed {args.seed}: expected an integer >= 0")
    out = Path(args.paths[-1])
    try:
        if args.random:
            source = random_source(PRESETS[args.random], args.seed or 0)
        else:
            source = open_source(Path(args.paths[0]), PRESETS[args.preset], args.scheduler_config, args.tokenizer)
        converted = write_model(source, out, dtype=args.dtype, shard_mib=args.shard_mib,
                                model_id=args.id or default_model_id(out), name=args.name or out.name,
                                force=args.force, log=lambda line: print(line, file=sys.stderr))
    except ConvertError as error:
        print(f"doppler convert: {len(error.problems)} problem(s); nothing was written:", file=sys.stderr)
        print("\n".join(f"  {line}" for line in error.problems), file=sys.stderr)
        return 1
    for why, keys in converted.ignored.items():
        shown = ", ".join(keys[:SHOWN_IGNORED]) + (", ..." if len(keys) > SHOWN_IGNORED else "")
        print(f"ignored {len(keys)}: {why}: {shown}")
    print(f"wrote {converted.folder}/manifest.json\n{summary(converted.manifest)}")
    return 0
