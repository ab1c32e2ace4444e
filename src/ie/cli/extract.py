"""``ie-extract``: strike and casualty records for new articles, one JSON line per article.

    ie-extract --model runs/cpu-tiny --input seeds/ --output events.jsonl
    ie-extract --model runs/cpu-tiny --input new.jsonl more/ --output events.jsonl --resume
    accelerate launch -m ie.cli.extract --model runs/arabert --input big.jsonl --output events.jsonl
    ie-extract --model runs/cpu-tiny --input seeds/ --output tasks.json --format label-studio

Output and crash safety:

* Records are appended and flushed line by line. ``--resume`` first cuts a truncated last line (a
  crash mid-write), then skips every id already in the output, error records included; without
  ``--resume`` (or ``--overwrite``) an existing output is an error, so nothing is ever lost.
  ``--overwrite`` removes the earlier output only once the model has loaded; it can be repeated.
* One run at a time per output: the run holds :func:`ie.core.fileio.output_lock` on OUTPUT (the main
  process, for the whole launch) from before the model loads until the end. A second ``ie-extract``
  on the same output, ``--resume`` or ``--overwrite`` alike, is refused with exit status 2 and
  changes nothing; the first run goes on unaffected.
* The output folder is checked before any model is loaded (or ``torch`` imported). A write that
  fails while running (a full disk, a folder turned read-only) is one error line and exit status 1;
  the lines already written stay, and ``--resume`` completes the output once the cause is fixed.
* Under ``accelerate launch`` with N processes, article i (in input order) belongs to process
  i mod N, which appends it to its own part file ``OUTPUT.part-<rank>-of-<N>``. At the end the main
  process merges the parts into OUTPUT through a temp file and an atomic rename, then deletes them:
  every article is written exactly once. Parts left by a crash are merged by the next ``--resume``
  before it reads the done ids, whatever N was then. The merge restores input order, so the output
  of N processes is the output of one (scores may differ in the last digits: other batches).
* ``--format label-studio`` streams tasks (with ``predictions``, ``model_version`` and scores) into
  ``OUTPUT.partial.jsonl`` and, when the run completes, writes OUTPUT as the JSON list that
  ``ie-studio push --predictions OUTPUT`` imports (one task per line, atomically). Articles that fail
  cannot be tasks: they are reported on stderr and retried by the next ``--resume``.

Bad command-line input (no model, no inputs, an unusable input path, an output that exists or
cannot be written) gets one error line and exit status 2 before anything is written. A broken
article (a file that is not UTF-8, a bad JSON line, ...) gets an error record
(``{"id", "source", "error"}``) and the run goes on.

``torch``, ``transformers`` and ``accelerate`` are imported only once the arguments and paths are
checked: ``--help`` and argument errors answer at once.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ie.cli.conventions import BAD_INPUT, FAILED, error, run_main, underscore_flags
from ie.core.fileio import atomic_write_text
from ie.events.articles import InputError, check_inputs, parse_date
from ie.events.outputs import FORMATS, OutputError, check_output
from ie.model.files import check_model_dir

# ie.model.prediction.PRECISIONS, repeated here: importing ie.model.prediction imports torch (seconds), and
# --help must not wait for it (a test keeps the two equal)
PRECISIONS = ("float32", "bfloat16", "int8")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ie-extract",
        description="Extract strike and casualty events from Arabic articles: one JSON record per article.",
    )
    p.add_argument("--model", type=Path, help="trained model directory (train.py --output_dir)")
    p.add_argument("--input", nargs="+", default=[], metavar="PATH",
                   help=".txt files, folders of them, or .jsonl (id, text, optional date)")  # fmt: skip
    p.add_argument("--output", type=Path, help="output file (.jsonl; .json with --format label-studio)")
    p.add_argument("--format", choices=FORMATS, default="jsonl",
                   help="jsonl records (default) or a Label Studio task list with predictions")  # fmt: skip
    p.add_argument("--resume", action="store_true", help="continue an output: skip ids already in it")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.add_argument("--batch_size", type=int, default=16, help="windows per forward pass (default 16)")
    p.add_argument("--date", help="article date (YYYY-MM-DD) for inputs that carry none")
    p.add_argument("--device", help="torch device (default: the accelerate process's device)")
    p.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="float32",
        help="float32 (exact, default); bfloat16 or int8 (CPU): faster, near-identical outputs "
        "(bench/README.md gives the speed and agreement)",
    )
    p.add_argument("--aliases", type=Path, default=None, help="alias table (default: ie's own)")
    p.add_argument("--no_progress", action="store_true", help="no progress bar")
    p.add_argument("--write_schema", type=Path, metavar="PATH",
                   help="write the JSON Schema of an output line to PATH and exit")  # fmt: skip
    return p


def _fail(message: str, show: bool = True, status: int = BAD_INPUT) -> int:
    """One error line (from the main process only) and the exit status."""
    if show:
        error("ie-extract", message)
    return status


def _launch_rank() -> int:
    """This process's rank under a launcher, read from the environment (before torch is imported)."""
    for name in ("RANK", "OMPI_COMM_WORLD_RANK", "MV2_COMM_WORLD_RANK", "PMI_RANK"):
        value = os.environ.get(name, "")
        if value.isdigit():
            return int(value)
    return 0


def _check_args(args: argparse.Namespace) -> list[Path]:
    if args.model is None:
        raise InputError("--model is required")
    try:
        check_model_dir(args.model)
    except ValueError as e:
        raise InputError(f"--model {e}") from None
    if args.output is None:
        raise InputError("--output is required")
    if args.output.is_dir():
        raise InputError(f"--output {args.output} is a folder; give a file name")
    if args.resume and args.overwrite:
        raise InputError("--resume and --overwrite exclude each other")
    if args.batch_size < 1:
        raise InputError("--batch_size must be >= 1")
    if args.date is not None:
        try:
            args.date = parse_date(args.date)
        except ValueError as e:
            raise InputError(f"--date: {e}") from None
    return check_inputs(args.input)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    return run_main("ie-extract", lambda: _main(underscore_flags(argv)))


def _main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if args.write_schema is not None:
        from ie.events.records import record_json_schema_text

        atomic_write_text(args.write_schema, record_json_schema_text())
        print(f"wrote {args.write_schema}")
        return 0

    # arguments, inputs, output folder and aliases first: an error answers before torch is imported
    show = _launch_rank() == 0
    from ie.events.canonical import DEFAULT_ALIASES, AliasTable

    try:
        inputs = _check_args(args)
        check_output(args.output, args.format, args.resume, args.overwrite)
    except (InputError, OutputError) as e:
        return _fail(str(e), show)
    try:
        aliases = AliasTable.load(args.aliases or DEFAULT_ALIASES)
    except (ValueError, OSError) as e:
        return _fail(f"--aliases: {e}", show)

    import torch
    from accelerate import PartialState

    from ie.events import batch

    # cpu=True lets torchrun-launched processes without CUDA form a gloo group (MULTI_CPU)
    state = PartialState(cpu=args.device == "cpu" or not torch.cuda.is_available())
    show = state.is_main_process
    with contextlib.ExitStack() as held:
        # the main process holds the output's lock for the whole launch: its ranks write their part
        # files under it, and a second run on the same output is refused before it loads a model
        problem, done = batch.claim_output(state, args.output, args.format, args.resume, args.overwrite, held)
        if problem is None:
            return _run(args, inputs, aliases, state, done)
    state.wait_for_everyone()  # no rank leaves while another is still talking to it
    return _fail(problem, show)


@contextlib.contextmanager
def _transformers_bars(enabled: bool) -> Iterator[None]:
    """transformers' own progress bars ("Loading weights") follow --no_progress, and only for the block."""
    from transformers.utils import logging as hf_logging

    was = hf_logging.is_progress_bar_enabled()
    if not enabled:
        hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was and not enabled:
            hf_logging.enable_progress_bar()


def _run(args: argparse.Namespace, inputs: list[Path], aliases: Any, state: Any, done: set[str]) -> int:
    """Load the model, run the batch (ie.events.batch), report; the exit status."""
    from ie.events import batch
    from ie.events.extraction import Extractor
    from ie.model.prediction import tune_cpu_memory

    tune_cpu_memory()  # process-wide: this entry point opts in, as it does to pausing the GC per chunk
    show = state.is_main_process
    try:
        with _transformers_bars(enabled=show and not args.no_progress):
            extractor = Extractor.from_pretrained(
                args.model, device=args.device or state.device, aliases=aliases, precision=args.precision,
                pause_gc=True,
            )  # fmt: skip
    except Exception as e:  # a broken model directory: one line, not a traceback
        return _fail(f"--model {args.model}: cannot load the model ({type(e).__name__}: {e})", show)
    if args.overwrite:
        problem = batch.clear_previous(state, args.output, args.format)
        if problem is not None:
            return _fail(problem, show, FAILED)
    result = batch.run(
        extractor, inputs, args.output, args.format, state=state, done=done, date=args.date,
        batch_size=args.batch_size, progress=not args.no_progress,
        warn=lambda message: print(f"ie-extract: {message}", file=sys.stderr),
    )  # fmt: skip
    if not result.ok:
        return _fail(result.message, show, FAILED)
    if show:
        print(result.message, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
