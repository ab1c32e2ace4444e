"""New articles to extract from: ``.txt`` files, folders of them, JSONL with ``id``, ``text``, ``date``.

Reading streams: one article at a time, in a fixed order (inputs as given; a folder's ``.txt`` files
sorted by path, recursively). A broken article (undecodable file, bad JSON line, no text, bad date,
an id seen before) comes out as an :class:`Article` with ``error`` set, so the caller writes an error
record and goes on. Problems with the inputs themselves (missing path, unsupported file type, a
folder without articles) raise :class:`InputError` before anything is read.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

JSONL_SUFFIXES = (".jsonl", ".ndjson")


class InputError(ValueError):
    """An input path that cannot be used at all."""


@dataclass
class Article:
    id: str
    text: str | None
    source: str
    date: dt.date | None = None
    error: str | None = None


def parse_date(value: object) -> dt.date | None:
    """An ISO date (``2023-11-14``, or the date part of an ISO timestamp); None for null/empty."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError(f"date must be an ISO date string, got {value!r}")
    try:
        if len(value) > 10:
            return dt.datetime.fromisoformat(value).date()
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"date {value!r} is not an ISO date (YYYY-MM-DD)") from None


def check_inputs(paths: Sequence[str | Path]) -> list[Path]:
    """The input paths, or :class:`InputError` naming the first unusable one."""
    if not paths:
        raise InputError("no inputs: give .txt files, folders of them, or .jsonl files")
    out = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            if next(iter(_txt_files(path)), None) is None:
                raise InputError(f"{path}: folder holds no .txt articles")
        elif path.is_file():
            if path.suffix not in (".txt", *JSONL_SUFFIXES):
                kinds = ", ".join((".txt", *JSONL_SUFFIXES))
                raise InputError(f"{path}: unsupported input (expected {kinds} or a folder)")
        else:
            raise InputError(f"{path}: no such file or folder")
        out.append(path)
    return out


def _txt_files(folder: Path) -> Iterator[Path]:
    return iter(sorted(p for p in folder.rglob("*.txt") if p.is_file()))


def count_articles(paths: Sequence[Path]) -> int:
    """How many articles the inputs hold (one per .txt file, one per non-blank JSONL line)."""
    n = 0
    for path in paths:
        if path.is_dir():
            n += sum(1 for _ in _txt_files(path))
        elif path.suffix == ".txt":
            n += 1
        else:
            with open(path, "rb") as f:
                n += sum(1 for line in f if line.strip())
    return n


def not_utf8(data: bytes, error: UnicodeDecodeError) -> str:
    """Why ``data`` is not UTF-8, with the fix when it reads as Windows-1256 Arabic (common in the wild)."""
    try:
        if any("\u0621" <= c <= "\u064a" for c in data.decode("cp1256")):
            return "not UTF-8 (cp1256? convert with iconv -f cp1256 -t utf-8)"
    except UnicodeDecodeError:
        pass
    return f"not UTF-8 (byte 0x{data[error.start]:02x} at offset {error.start})"


def _read_txt(path: Path, article_id: str, default_date: dt.date | None) -> Article:
    source = str(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        return Article(article_id, None, source, error=f"{path}: cannot read ({e.strerror or e})")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        return Article(article_id, None, source, error=f"{path}: {not_utf8(data, e)}")
    text = text.removeprefix("\ufeff")
    if not text.strip():
        return Article(article_id, None, source, error=f"{path}: empty text")
    return Article(article_id, text, source, default_date)


def _jsonl_article(raw: bytes, lineno: int, path: Path, default_date: dt.date | None) -> Article:
    source = str(path)
    fallback_id = f"{path.name}:{lineno}"
    where = f"{path}: line {lineno}"
    try:
        item = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        return Article(fallback_id, None, source, error=f"{where}: {not_utf8(raw, e)}")
    except json.JSONDecodeError as e:
        return Article(fallback_id, None, source, error=f"{where}: not valid JSON ({e})")
    if not isinstance(item, dict):
        return Article(fallback_id, None, source, error=f"{where}: expected a JSON object with id and text")
    raw_id = item.get("id")
    if isinstance(raw_id, bool) or not isinstance(raw_id, (str, int)) or str(raw_id) == "":
        msg = f"{where}: missing or invalid 'id' (a string or integer)"
        return Article(fallback_id, None, source, error=msg)
    article_id = str(raw_id)
    text = item.get("text")
    if not isinstance(text, str) or not text.strip():
        return Article(article_id, None, source, error=f"{where}: empty or missing 'text'")
    try:
        date = parse_date(item.get("date")) or default_date
    except ValueError as e:
        return Article(article_id, None, source, error=f"{where}: {e}")
    return Article(article_id, text, source, date)


def iter_articles(
    paths: Sequence[Path],
    default_date: dt.date | None = None,
    want: Callable[[int, str], bool] | None = None,
) -> Iterator[tuple[int, Article | None]]:
    """``(index, article)`` for every article of the inputs, in order.

    ``want(index, id)`` decides which articles are read at all (a process's shard, not yet done):
    for the others the article is None and a ``.txt`` file is not even opened. An id seen before is
    an error article (ids key the output and ``--resume``); ``want`` is asked before that check, so
    every process sees every id and agrees on which ones are duplicates.
    """
    seen: dict[str, str] = {}
    index = 0

    def emit(article_id: str, source: str, make: Callable[[], Article]) -> tuple[int, Article | None]:
        first = seen.get(article_id)
        if first is None:
            seen[article_id] = source
        if want is not None and not want(index, article_id):
            return index, None
        if first is not None:
            msg = f"duplicate id {article_id!r} (first in {first})"
            return index, Article(article_id, None, source, error=msg)
        return index, make()

    for path in paths:
        if path.is_dir():
            for file in _txt_files(path):
                article_id = file.relative_to(path).with_suffix("").as_posix()
                yield emit(article_id, str(file), lambda f=file, i=article_id: _read_txt(f, i, default_date))
                index += 1
        elif path.suffix == ".txt":
            yield emit(path.stem, str(path), lambda p=path: _read_txt(p, p.stem, default_date))
            index += 1
        else:
            with open(path, "rb") as f:
                for lineno, raw in enumerate(f, start=1):
                    if not raw.strip():
                        continue
                    article = _jsonl_article(raw, lineno, path, default_date)
                    yield emit(article.id, article.source, lambda a=article: a)
                    index += 1
