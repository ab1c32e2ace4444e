"""Articles → structured strike and casualty records: the Python API behind ``ie-extract``.

    extractor = Extractor.from_pretrained("runs/cpu-tiny")
    record = extractor.extract(text, article_date=date(2023, 11, 14))
    for record in extractor.extract_many(articles, batch_size=16):
        ...

``extract_many`` streams: it holds one chunk of articles at a time (``chunk_size``, default
``8 * batch_size``), sorts the chunk by length so the predictor's batches carry little padding,
and yields records in input order. Chunks are cut by input position only, so the same inputs always
give the same records. An article that fails (no text, or an exception while predicting or
assembling it) becomes an :class:`~ie.events.records.ExtractionError`; the others go on.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import logging
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from ie.core.document import Document
from ie.core.hashing import sha256_file
from ie.events.articles import Article, parse_date
from ie.events.assembly import assemble
from ie.events.canonical import DEFAULT_ALIASES, AliasTable
from ie.events.records import ExtractionError, ExtractionRecord, entities_and_relations
from ie.model.files import WEIGHTS
from ie.model.prediction import Predictor

logger = logging.getLogger(__name__)


def model_version(path: str | os.PathLike[str]) -> str:
    """``<dir name>@<sha256 of the weights, 12 hex digits>``: names exactly which weights ran."""
    path = Path(path)
    weights = path / WEIGHTS
    if not weights.is_file():
        return path.name or str(path)
    return f"{path.resolve().name}@{sha256_file(weights)[:12]}"


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while a chunk is processed (``Extractor(pause_gc=True)``: the
    collector is process-wide, so an entry point opts in, as ``ie-extract`` does).

    A chunk allocates tens of thousands of small objects (spans, records), almost none in cycles:
    reference counting frees them. Each allocation burst still triggers full collections that walk
    every object alive, the loaded model's and the caller's records included: 10-15% of the
    extraction time (``bench/inference.py``). What cycles a chunk leaves are collected after it.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class Extractor:
    """A :class:`~ie.model.prediction.Predictor` plus event assembly and canonical names."""

    def __init__(
        self,
        predictor: Predictor,
        aliases: AliasTable | None = None,
        model: str = "unknown",
        pause_gc: bool = False,
    ):
        self.predictor = predictor
        self.aliases = aliases or AliasTable.load()
        self.model = model
        self.pause_gc = pause_gc

    @classmethod
    def from_pretrained(
        cls,
        path: str | os.PathLike[str],
        device: Any = None,
        aliases: AliasTable | str | os.PathLike[str] = DEFAULT_ALIASES,
        precision: str = "float32",
        pause_gc: bool = False,
    ) -> Extractor:
        """``precision``: see :meth:`Predictor.from_pretrained`; ``pause_gc``: see :func:`_gc_paused`."""
        table = aliases if isinstance(aliases, AliasTable) else AliasTable.load(aliases)
        predictor = Predictor.from_pretrained(path, device=device, precision=precision)
        return cls(predictor, table, model_version(path), pause_gc)

    # -- one article ---------------------------------------------------------------------------
    def extract(
        self, text: str, article_date: dt.date | str | None = None, id: str = "article", source: str = ""
    ) -> ExtractionRecord:
        """The record of one article; ValueError for an empty text or a bad date."""
        if not isinstance(text, str) or not text.strip():
            raise ValueError("empty text")
        day = article_date if isinstance(article_date, dt.date) else parse_date(article_date)
        (doc,) = self.predictor.predict([text], [id])
        return self.record(doc, Article(id, text, source, day))

    def record(self, doc: Document, article: Article) -> ExtractionRecord:
        """Assemble the record of a predicted document; raises if a span does not slice the text."""
        if doc.text != article.text:
            raise ValueError(f"article {article.id}: the prediction is for a different text")
        doc.check_offsets()
        entities, relations = entities_and_relations(doc, self.aliases.canonical)
        return ExtractionRecord(
            id=article.id,
            source=article.source,
            date=article.date,
            events=assemble(doc, article.date, self.aliases),
            entities=entities,
            relations=relations,
            model=self.model,
            aliases_version=self.aliases.version,
        )

    def error(self, article: Article, message: str) -> ExtractionError:
        return ExtractionError(id=article.id, source=article.source, error=message, model=self.model,
                               aliases_version=self.aliases.version)  # fmt: skip

    # -- many articles -------------------------------------------------------------------------
    def extract_many(
        self,
        articles: Iterable[Article | Mapping[str, Any] | str],
        batch_size: int = 16,
        chunk_size: int | None = None,
    ) -> Iterator[ExtractionRecord | ExtractionError]:
        """Records in input order; a generator holding at most one chunk of articles at a time.

        Items are :class:`~ie.events.articles.Article`, mappings with ``id``, ``text`` and optional
        ``date``, or plain texts (id: their position).
        """
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        chunk_size = chunk_size or 8 * batch_size
        chunk: list[Article] = []
        for n, item in enumerate(articles):
            chunk.append(_as_article(item, n))
            if len(chunk) >= chunk_size:
                yield from self._chunk(chunk, batch_size)
                chunk = []
        if chunk:
            yield from self._chunk(chunk, batch_size)

    def _chunk(self, chunk: list[Article], batch_size: int) -> list[ExtractionRecord | ExtractionError]:
        # around the whole chunk, never around the caller's handling of what it yields
        with _gc_paused() if self.pause_gc else contextlib.nullcontext():
            return self._chunk_records(chunk, batch_size)

    def _chunk_records(
        self, chunk: list[Article], batch_size: int
    ) -> list[ExtractionRecord | ExtractionError]:
        out: list[ExtractionRecord | ExtractionError | None] = [None] * len(chunk)
        todo = []
        for i, a in enumerate(chunk):
            if a.error is not None:
                out[i] = self.error(a, a.error)
            elif not isinstance(a.text, str) or not a.text.strip():
                out[i] = self.error(a, "empty text")
            else:
                todo.append(i)
        todo.sort(key=lambda i: (-len(chunk[i].text or ""), i))
        if not todo:  # every article of the chunk failed before prediction: nothing to predict
            return out  # type: ignore[return-value]
        try:
            texts, ids = [chunk[i].text for i in todo], [chunk[i].id for i in todo]
            docs: list[Document | Exception] = list(self.predictor.predict(texts, ids, batch_size))
        except Exception:  # isolate the article that breaks the batch
            logger.warning("a batch of %d articles failed; predicting one by one", len(todo), exc_info=True)
            docs = []
            for i in todo:
                try:
                    docs += self.predictor.predict([chunk[i].text], [chunk[i].id], batch_size)
                except Exception as e:
                    docs.append(e)
        for i, doc in zip(todo, docs, strict=True):
            if isinstance(doc, Exception):
                out[i] = self.error(chunk[i], f"prediction failed: {type(doc).__name__}: {doc}")
                continue
            try:
                out[i] = self.record(doc, chunk[i])
            except Exception as e:
                logger.warning("article %s: %s", chunk[i].id, e, exc_info=True)
                out[i] = self.error(chunk[i], f"event assembly failed: {type(e).__name__}: {e}")
        return out  # type: ignore[return-value]


def _as_article(item: Article | Mapping[str, Any] | str, n: int) -> Article:
    if isinstance(item, Article):
        return item
    if isinstance(item, str):
        return Article(str(n), item, "")
    if isinstance(item, Mapping):
        article_id = str(item.get("id", n))
        source = str(item.get("source", ""))
        try:
            day = item.get("date")
            day = day if isinstance(day, dt.date) else parse_date(day)
        except ValueError as e:
            return Article(article_id, None, source, error=str(e))
        return Article(article_id, item.get("text"), source, day)
    return Article(str(n), None, "", error=f"unsupported article type {type(item).__name__}")
