"""Fine-tune the joint entity/trigger/relation model.

    python train.py --config configs/cpu-tiny.yaml --output_dir runs/tiny
    accelerate launch train.py --config configs/arabert.yaml --output_dir runs/arabert
    python train.py --config configs/cpu-tiny.yaml --output_dir runs/tiny --resume_from_checkpoint latest

Any config field can be overridden on the command line (``python train.py --help`` lists them).
"""

from __future__ import annotations

import argparse
import logging
import sys

from ie.labelstudio import ValidationError
from ie.training import load_config, train


def main(argv: list[str] | None = None) -> int:
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config", help="YAML training config (configs/*.yaml)")
    args, overrides = pre.parse_known_args(argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    try:
        cfg = load_config(args.config, overrides)
        out = train(cfg)
    except (ValueError, ValidationError) as e:
        print(f"train.py: error: {e}", file=sys.stderr)
        return 2
    print(f"model saved in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
