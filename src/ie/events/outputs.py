"""The files ``ie-extract`` writes: lines file, per-rank part files, resume, merge and the task list.

The protocol (the command's docstring, :mod:`ie.cli.extract`, tells it from the user's side):

* Records are appended line by line to the *lines file* (OUTPUT itself for jsonl,
  ``OUTPUT.partial.jsonl`` for a Label Studio list). A resume cuts a truncated last line
  (:func:`repair_tail`), then skips every id already written (:func:`read_done_ids`).
* With N processes, rank r appends to ``<lines file>.part-<r>-of-<N>``; :func:`merge_parts` folds
  the parts back into the lines file in input order through a temp file and an atomic rename, and
  is also what a resume runs first on parts a crash left behind.
* A Label Studio run ends with :func:`write_task_list` (the JSON list ``ie-studio push`` imports);
  a resume of a finished list turns it back into a lines file (:func:`task_list_to_lines`).
* Every function here runs under :func:`ie.core.fileio.output_lock` on OUTPUT, held by the caller.
"""

from __future__ import annotations

import errno
import heapq
import itertools
import json
import math
import os
import shutil
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from ie.core.fileio import atomic_open, atomic_write_text
from ie.events.articles import Article

FORMATS = ("jsonl", "label-studio")


class OutputError(ValueError):
    """An output that cannot be written as asked (exists, unwritable, not ie-extract output)."""


class WriteFailed(OSError):
    """Writing the output failed while running (a full disk, a folder turned read-only)."""


def lines_path(output: Path, fmt: str) -> Path:
    """The append-only JSONL file a run writes into (OUTPUT itself for jsonl)."""
    return output if fmt == "jsonl" else output.with_name(output.name + ".partial.jsonl")


def part_paths(output: Path, fmt: str) -> list[Path]:
    base = lines_path(output, fmt)
    return sorted(base.parent.glob(base.name + ".part-*"))


def part_path(output: Path, fmt: str, rank: int, world: int) -> Path:
    base = lines_path(output, fmt)
    return base.with_name(f"{base.name}.part-{rank}-of-{world}")


def repair_tail(path: Path) -> int:
    """Cut a last line that has no newline (a write cut short by a crash); the bytes removed."""
    if not path.is_file():
        return 0
    with open(path, "r+b") as f:
        size = f.seek(0, os.SEEK_END)
        if size == 0:
            return 0
        f.seek(size - 1)
        if f.read(1) == b"\n":
            return 0
        pos = size
        while pos > 0:
            step = min(1 << 16, pos)
            f.seek(pos - step)
            block = f.read(step)
            nl = block.rfind(b"\n")
            if nl >= 0:
                keep = pos - step + nl + 1
                break
            pos -= step
        else:
            keep = 0
        f.truncate(keep)
        return size - keep


def _line_id(line: bytes, fmt: str) -> str:
    item = json.loads(line)
    if fmt == "jsonl":
        return str(item["id"])
    return str(item["data"]["article_id"])


def read_done_ids(path: Path, fmt: str) -> set[str]:
    """Ids already written; OutputError naming the line if the file is not ie-extract output."""
    done: set[str] = set()
    if not path.is_file():
        return done
    with open(path, "rb") as f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                done.add(_line_id(line, fmt))
            except (ValueError, KeyError, TypeError):
                raise OutputError(
                    f"{path}: line {n} is not an ie-extract {fmt} record; refusing to append to it"
                ) from None
    return done


def _append_atomically(dest: Path, lines: Iterable[bytes]) -> None:
    """dest := its own lines + ``lines``, through a temp file and an atomic rename."""
    with atomic_open(dest, "wb") as out:
        if dest.is_file():
            with open(dest, "rb") as f:
                shutil.copyfileobj(f, out)
        for line in lines:
            out.write(line if line.endswith(b"\n") else line + b"\n")


def merge_parts(output: Path, fmt: str, index_of: Mapping[str, int] | None = None) -> int:
    """Fold part files (this run's, or a crashed run's) into the lines file; how many were merged.

    With ``index_of`` (article id → input position, known to the main process after a run) the
    parts are merged back into input order; parts left by a crash are appended part by part. Lines
    whose id is already in the lines file are dropped: a crash between the rename and the deletion
    of the parts must not write an article twice.
    """
    parts = part_paths(output, fmt)
    if not parts:
        return 0
    for p in parts:
        repair_tail(p)
    base = lines_path(output, fmt)
    written = read_done_ids(base, fmt)

    def keyed(part: Path) -> Iterator[tuple[float, bytes]]:
        with open(part, "rb") as f:
            for n, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    article_id = _line_id(line, fmt)
                except (ValueError, KeyError, TypeError):
                    raise OutputError(f"{part}: line {n} is not an ie-extract {fmt} record") from None
                if article_id not in written:
                    yield (index_of.get(article_id, math.inf) if index_of else 0), line

    streams = [keyed(p) for p in parts]
    merged = heapq.merge(*streams, key=lambda kl: kl[0]) if index_of else itertools.chain(*streams)
    _append_atomically(base, (line for _, line in merged))
    for p in parts:
        p.unlink()
    return len(parts)


def write_task_list(lines: Path, output: Path) -> int:
    """The Label Studio JSON list, one task per line, written atomically; the number of tasks."""
    n = 0

    def gen() -> Iterator[str]:
        nonlocal n
        yield "["
        with open(lines, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if line:
                    yield ("\n" if n == 0 else ",\n") + line
                    n += 1
        yield "\n]\n"

    with atomic_open(output) as out:
        for piece in gen():
            out.write(piece)
    return n


def task_list_to_lines(output: Path, lines: Path) -> None:
    """Back from a finished Label Studio list to the lines file, so ``--resume`` can extend it."""
    try:
        tasks = json.loads(output.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise OutputError(f"{output}: not a Label Studio task list ({e})") from None
    if not isinstance(tasks, list):
        raise OutputError(f"{output}: not a Label Studio task list")
    atomic_write_text(lines, "".join(json.dumps(t, ensure_ascii=False) + "\n" for t in tasks))


def output_files(output: Path, fmt: str) -> list[Path]:
    """The files of an earlier run on ``output`` that exist: the output, its lines file, part files."""
    # dict.fromkeys: for jsonl the output is its own lines file, and a path is removed only once
    paths = dict.fromkeys((output, lines_path(output, fmt), *part_paths(output, fmt)))
    return [p for p in paths if p.exists()]


_EXISTS = "{} exists: use --resume to continue that run or --overwrite to replace it"


def _why_unwritable(folder: Path) -> str:
    try:
        if os.statvfs(folder).f_flag & os.ST_RDONLY:
            return os.strerror(errno.EROFS)
    except OSError as e:
        return e.strerror or str(e)
    return os.strerror(errno.EACCES)


def check_output(output: Path, fmt: str, resume: bool, overwrite: bool) -> None:
    """OutputError unless ``output`` can be written as asked; reads only, so it runs before the model loads.

    The folder (or the nearest existing folder above it, which the run will create it in) must be
    writable, and so must the files a ``--resume`` appends to; without ``--resume`` or
    ``--overwrite`` an earlier output is an error.
    """
    existing = output_files(output, fmt)
    if existing and not (resume or overwrite):
        raise OutputError(_EXISTS.format(existing[0]))
    folder = output.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise OutputError(f"--output {output}: {folder} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"--output {output}: cannot write in {folder} ({_why_unwritable(folder)})")
    if resume:
        for p in existing:
            if not os.access(p, os.R_OK | os.W_OK):
                raise OutputError(f"--output {output}: cannot append to {p} ({_why_unwritable(p.parent)})")


def prepare_output(output: Path, fmt: str, resume: bool, overwrite: bool) -> set[str]:
    """Make the output ready to append to (main process, under the output lock); the ids already done.

    It only checks and repairs: an ``--overwrite`` removes the earlier files later, with
    :func:`clear_output`, once the model has loaded (a model that fails to load loses nothing).
    """
    if overwrite:
        return set()
    base = lines_path(output, fmt)
    if not resume:
        leftovers = output_files(output, fmt)
        if leftovers:
            raise OutputError(_EXISTS.format(leftovers[0]))
        return set()
    if fmt == "label-studio" and output.exists() and not base.exists():
        task_list_to_lines(output, base)
    repair_tail(base)
    merge_parts(output, fmt)
    return read_done_ids(base, fmt)


def clear_output(output: Path, fmt: str) -> None:
    """``--overwrite``: remove every file of an earlier run on ``output`` (under the output lock)."""
    for p in output_files(output, fmt):
        p.unlink(missing_ok=True)


def task_line(record: Any, article: Article, model_version: str) -> str:
    """One Label Studio task (with ``predictions``) for a record, as a JSON line."""
    from ie.annotation.labelstudio import documents_to_tasks
    from ie.core.document import Document, Relation, Span

    spans = [Span(e.id, e.start, e.end, e.label, e.text, e.score) for e in record.entities]
    relations = [Relation(r.head.id, r.tail.id, r.label, r.score) for r in record.relations]
    meta: dict[str, Any] = {"article_id": record.id, "source": record.source}
    if record.date is not None:
        meta["date"] = record.date.isoformat()
    doc = Document(record.id, article.text or "", spans, relations, meta)
    (task,) = documents_to_tasks([doc], field="predictions", model_version=model_version)
    return json.dumps(task, ensure_ascii=False)


def record_line(record: Any) -> str:
    """One ``ie-extract`` jsonl record (:mod:`ie.events.records`) as a JSON line."""
    return json.dumps(record.model_dump(mode="json"), ensure_ascii=False)


def append(fd: int, data: bytes) -> None:
    """Append all of ``data`` to ``fd`` (unbuffered: what is not written raises here, not at close)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def write_failed_message(path: Path, e: OSError) -> str:
    """The one line a failed write is reported with: what stays and how to complete the output."""
    return (f"{path}: write failed ({e.strerror or e}); what was written before stays: "
            "fix the cause (free space, permissions), then rerun with --resume")  # fmt: skip


def finish_output(output: Path, fmt: str, index_of: Mapping[str, int] | None = None) -> int | None:
    """After a run: merge the part files, and for label-studio write the task list; its task count."""
    merge_parts(output, fmt, index_of)
    if fmt != "label-studio":
        return None
    base = lines_path(output, fmt)
    n_tasks = write_task_list(base, output)
    base.unlink()
    return n_tasks
