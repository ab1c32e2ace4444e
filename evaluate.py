"""Score a saved model (and the dictionary baseline) on a Label Studio export; write reports.

    python evaluate.py --model runs/cpu-tiny --data data/annotations/seeds.json --output_dir runs/report
    python evaluate.py --cv --data data/annotations/seeds.json --output_dir runs/report-cv
    python evaluate.py --cv --config configs/cpu-tiny.yaml --num_train_epochs 20 ...

With --cv, any field of the training config can be overridden like in train.py (--FIELD VALUE;
--set FIELD=VALUE is the older spelling and still works).

Writes report.json, report.md and report.html into --output_dir (the keys of report.json are
documented in the README) and prints a summary table.
"""

from __future__ import annotations

import argparse
import logging
import sys

from ie.annotation.labelstudio import ValidationError
from ie.cli.conventions import FAILED, error, run_main, underscore_flags
from ie.evaluation.report import summary_table
from ie.evaluation.run import DEFAULT_CV_CONFIG, run


def _overrides(pairs: list[str]) -> list[str]:
    """``--set key=value`` → ``--key value``, the form ie.training.config.load_config takes."""
    out = []
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--set {pair!r}: expected KEY=VALUE (a field of configs/*.yaml)")
        out += [f"--{key.strip()}", value]
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    return run_main("evaluate.py", lambda: _main(underscore_flags(argv)))


def _main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="folder of a model saved by train.py")
    p.add_argument(
        "--data", nargs="+", required=True, help="Label Studio JSON export(s) with gold annotations"
    )
    p.add_argument("--output_dir", required=True, help="where report.json/.md/.html go")
    p.add_argument("--cv", action="store_true", help="leave-one-article-out cross-validation over --data")
    p.add_argument("--config", default=DEFAULT_CV_CONFIG, help="training config of the CV folds")
    p.add_argument("--set", dest="overrides", action="append", default=[], help=argparse.SUPPRESS)
    p.add_argument(
        "--cv_dir",
        help="keep the fold models in DIR/fold-N (replaced on a rerun; default: a temp folder, removed)",
    )
    p.add_argument("--baseline_data", nargs="+", help="exports to build the dictionary baseline from "
                   "(default: the model's training articles)")  # fmt: skip
    p.add_argument("--holdout", nargs="+", metavar="ARTICLE",
                   help="with --cv: only these folds (article ids or source files)")  # fmt: skip
    p.add_argument("--batch_size", type=int, default=16)
    p.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: cuda if available)")
    args, fields = p.parse_known_args(argv)
    if fields and not args.cv:  # config fields only train the CV folds
        p.error(f"unrecognized arguments: {' '.join(fields)}")
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    logging.getLogger("accelerate").setLevel(logging.WARNING)
    from ie.model.prediction import tune_cpu_memory

    tune_cpu_memory()  # process-wide malloc tuning: entry points opt in, library code does not
    try:
        result = run(
            args.output_dir,
            args.data,
            model=args.model,
            cv=args.cv,
            config=args.config,
            overrides=[*_overrides(args.overrides), *fields],
            cv_dir=args.cv_dir,
            baseline_data=args.baseline_data,
            batch_size=args.batch_size,
            device=args.device,
            holdout=args.holdout,
        )
    except (ValueError, ValidationError) as e:
        return error("evaluate.py", str(e))
    except RuntimeError as e:  # a CV fold's training failed while running
        return error("evaluate.py", str(e), FAILED)
    print(summary_table(result.report))
    for note in result.report["notes"]:
        print(f"note: {note}")
    print(f"reports written to {args.output_dir}: report.json, report.md, report.html")
    return 0


if __name__ == "__main__":
    sys.exit(main())
