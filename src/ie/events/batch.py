"""One batch-extraction run: input files → one output file, on one process or N (accelerate).

The output-file protocol itself (lines and part files, resume, merge, the task list) lives in
:mod:`ie.events.outputs`; this module drives it. Under N processes the main process holds the
output's lock and prepares the output, then article i (in input order) belongs to process i mod N,
which appends it to its own part file; the main process merges the parts at the end.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ie.core.fileio import OutputLocked, output_lock
from ie.events import outputs
from ie.events.articles import Article, count_articles, iter_articles
from ie.events.outputs import OutputError, WriteFailed


@dataclass
class RunResult:
    """What the main process reports: ``ok`` with a summary line, or not with the error line (the
    command line maps it to its exit status)."""

    ok: bool
    message: str
    counts: dict[str, int] = field(default_factory=dict)


def _broadcast(state: Any, values: list[Any]) -> list[Any]:
    if state.num_processes > 1:
        from accelerate.utils import broadcast_object_list

        broadcast_object_list(values)
    return values


def claim_output(
    state: Any, output: Path, fmt: str, resume: bool, overwrite: bool, held: contextlib.ExitStack
) -> tuple[str | None, set[str]]:
    """Lock and prepare ``output`` on the main process (the lock stays held by ``held``); every
    process gets the same answer: an error line, or the ids already done."""
    shared: list[Any] = [None, set()]
    if state.is_main_process:
        try:
            held.enter_context(output_lock(output))
            shared[1] = outputs.prepare_output(output, fmt, resume, overwrite)
        except (OutputLocked, OutputError) as e:
            shared[0] = str(e)
        except OSError as e:
            shared[0] = f"--output {output}: {e.strerror or e} ({e.filename or output})"
    _broadcast(state, shared)
    return shared[0], shared[1]


def clear_previous(state: Any, output: Path, fmt: str) -> str | None:
    """``--overwrite``: the main process removes the earlier output (once the model has loaded);
    no process opens its part file before the old ones are gone."""
    cleared: list[Any] = [None]
    if state.is_main_process:
        try:
            outputs.clear_output(output, fmt)
        except OSError as e:
            cleared[0] = f"--overwrite: cannot remove {e.filename}: {e.strerror or e}"
    return _broadcast(state, cleared)[0]


def _write(
    extractor: Any,
    articles: Iterator[Article],
    pending: deque[Article],
    target: Path,
    fmt: str,
    batch_size: int,
    stats: dict[str, Any],
    tick: Callable[[], None],
    warn: Callable[[str], None],
) -> None:
    """Append one line per extracted article to ``target``; a write error ends the run cleanly."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    except OSError as e:
        stats["failed"] = outputs.write_failed_message(target, e)
        return
    try:
        for record in extractor.extract_many(articles, batch_size=batch_size):
            tick()
            failed = getattr(record, "error", None) is not None
            stats["errors"] += failed
            article = pending.popleft()
            if fmt == "label-studio":
                if failed:  # a failed article cannot be a task; the next --resume retries it
                    warn(f"{record.source}: article {record.id}: {record.error}")
                    continue
                line = outputs.task_line(record, article, extractor.model)
            else:
                line = outputs.record_line(record)
            try:
                outputs.append(fd, (line + "\n").encode("utf-8"))
            except OSError as e:
                raise WriteFailed(e.errno, e.strerror) from None
            stats["written"] += 1
        try:
            os.fsync(fd)
        except OSError as e:
            raise WriteFailed(e.errno, e.strerror) from None
    except WriteFailed as e:
        stats["failed"] = outputs.write_failed_message(target, e)
    finally:
        os.close(fd)


def run(
    extractor: Any,
    inputs: list[Path],
    output: Path,
    fmt: str,
    *,
    state: Any,
    done: set[str],
    date: Any = None,
    batch_size: int = 16,
    progress: bool = True,
    warn: Callable[[str], None] = lambda message: None,
) -> RunResult:
    """Extract this process's share of ``inputs`` into ``output`` (ids in ``done`` skipped), then
    merge on the main process. Every process returns the same result."""
    from tqdm.auto import tqdm

    rank, world = state.process_index, state.num_processes
    target = outputs.lines_path(output, fmt) if world == 1 else outputs.part_path(output, fmt, rank, world)
    stats: dict[str, Any] = {"written": 0, "errors": 0, "skipped": 0, "failed": None}
    started = time.perf_counter()
    mine = len(range(rank, count_articles(inputs), world))
    bar = tqdm(
        total=mine, unit="article", desc="ie-extract", disable=not progress or not state.is_main_process
    )
    index_of: dict[str, int] = {}  # main process: input position of each id, to merge parts in order
    pending: deque[Article] = deque()  # articles in flight, in order: extract_many yields one record each

    def want(index: int, article_id: str) -> bool:
        if world > 1 and state.is_main_process:
            index_of.setdefault(article_id, index)
        if index % world != rank:
            return False
        if article_id in done:
            stats["skipped"] += 1
            bar.update(1)
            return False
        return True

    def todo() -> Iterator[Article]:
        for _, article in iter_articles(inputs, date, want):
            if article is not None:
                pending.append(article)
                yield article

    _write(extractor, todo(), pending, target, fmt, batch_size, stats, lambda: bar.update(1), warn)
    bar.close()

    state.wait_for_everyone()
    gathered = [stats]
    if world > 1:
        from accelerate.utils import gather_object

        gathered = gather_object([stats])
    result = RunResult(True, "")
    if state.is_main_process:
        result = _finish(output, fmt, gathered, index_of, time.perf_counter() - started)
    shared = _broadcast(state, [result])
    state.wait_for_everyone()
    return shared[0]


def _finish(
    output: Path, fmt: str, gathered: list[dict[str, Any]], index_of: dict[str, int], elapsed: float
) -> RunResult:
    counts = {k: sum(s[k] for s in gathered) for k in ("written", "errors", "skipped")}
    kind = "tasks" if fmt == "label-studio" else "records"
    failures = [s["failed"] for s in gathered if s["failed"]]
    if failures:  # the parts stay as they are: the next --resume merges them
        return RunResult(False, f"{failures[0]} ({counts['written']} {kind} written in this run)", counts)
    try:
        n_tasks = outputs.finish_output(output, fmt, index_of)
    except OSError as e:
        return RunResult(False, outputs.write_failed_message(Path(e.filename or output), e), counts)
    summary = (f"{counts['written']} {kind} written to {output} ({counts['errors']} errors, "
               f"{counts['skipped']} already done) in {elapsed:.1f} s")  # fmt: skip
    if fmt == "label-studio":
        summary += f"; {n_tasks} tasks in the list"
    return RunResult(True, summary, counts)
