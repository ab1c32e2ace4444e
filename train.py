"""Fine-tune the joint entity/trigger/relation model.

    python train.py --config configs/cpu-tiny.yaml --output_dir runs/tiny
    accelerate launch train.py --config configs/arabert.yaml --output_dir runs/arabert
    python train.py --config configs/cpu-tiny.yaml --output_dir runs/tiny --resume_from_checkpoint latest

Any config field can be overridden on the command line (``python train.py --help`` lists them). A
used output_dir is refused unless the run resumes it or ``--overwrite_output_dir`` clears it. Ctrl-C
stops the run and prints the command that resumes it from its last checkpoint.
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import sys

from ie.annotation.labelstudio import ValidationError
from ie.cli.conventions import INTERRUPTED, error, underscore_flags
from ie.training.trainer import TrainConfig, load_config, train

LOG_LEVELS = ("debug", "info", "warning", "error")


def _parser() -> argparse.ArgumentParser:
    """``--help``: the script's own options, then every config field (HfArgumentParser)."""
    from transformers import HfArgumentParser

    parser = HfArgumentParser(
        TrainConfig,
        prog="train.py",
        description=__doc__.split("\n\n")[0],
        epilog="Config fields come from --config's YAML file; a command-line value overrides it.",
    )
    parser.add_argument("--config", help="YAML training config (configs/*.yaml)")
    parser.add_argument(
        "--log_level",
        default="info",
        choices=LOG_LEVELS,
        help="debug also shows accelerate's per-file checkpoint messages",
    )
    return parser


def resume_command(argv: list[str]) -> str:
    """The command line that continues this run from its last checkpoint."""
    args, skip = [], 0
    for i, a in enumerate(argv):
        if skip:
            skip -= 1
            continue
        name = a.split("=", 1)[0]
        if name == "--resume_from_checkpoint":
            skip = 0 if "=" in a else 1
        elif name == "--overwrite_output_dir":  # would clear what the resume needs
            nxt = argv[i + 1] if i + 1 < len(argv) else ""
            skip = 1 if "=" not in a and nxt.lower() in ("true", "false", "yes", "no", "1", "0") else 0
        else:
            args.append(a)
    launcher = "accelerate launch" if "ACCELERATE_MIXED_PRECISION" in os.environ else "python"
    return f"{launcher} {shlex.join([sys.argv[0], *args, '--resume_from_checkpoint', 'latest'])}"


def main(argv: list[str] | None = None) -> int:
    argv = underscore_flags(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in argv):
        _parser().print_help()
        return 0
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config")
    pre.add_argument("--log_level", default="info", choices=LOG_LEVELS)
    args, overrides = pre.parse_known_args(argv)
    level = getattr(logging, args.log_level.upper())
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=level)
    # accelerate reports every file of every checkpoint at INFO: keep that for --log_level debug
    logging.getLogger("accelerate").setLevel(level if level == logging.DEBUG else max(level, logging.WARNING))
    try:
        cfg = load_config(args.config, overrides)
        out = train(cfg)
    except (ValueError, ValidationError) as e:
        return error("train.py", str(e))
    except KeyboardInterrupt:
        if os.environ.get("RANK", "0") == "0":
            print(f"\ntrain.py: interrupted; resume with: {resume_command(argv)}", file=sys.stderr)
        return INTERRUPTED
    if os.environ.get("RANK", "0") == "0":  # once per launch, not once per process
        print(f"model saved in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
