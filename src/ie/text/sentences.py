"""Sentence boundaries: the one splitter behind feature windows, event assembly and the baseline.

A sentence ends after a run of ``. ! ? ؟ … ۔`` followed by whitespace or the end of the text, and at
a line break. ``…`` ends a sentence like ``...`` does (it is the same mark typed as one character;
the two spellings must not split differently). A mark inside a token (``3.5``, ``U.S.A``) does not.
"""

from __future__ import annotations

import re

__all__ = ["SENTENCE_END_CHARS", "sentence_bounds"]

SENTENCE_END_CHARS = ".!?؟…۔"
_SENTENCE_END = re.compile(f"[{re.escape(SENTENCE_END_CHARS)}]+(?=\\s|$)|\\n+")


def sentence_bounds(text: str) -> list[tuple[int, int]]:
    """Character ranges ``[start, end)`` of the sentences of ``text``, in order.

    Ranges are trimmed of surrounding whitespace and never empty; together they cover every
    non-space character of the text, so nothing is dropped by sentence-based processing.
    """
    bounds: list[tuple[int, int]] = []
    start = 0
    for m in _SENTENCE_END.finditer(text):
        end = m.end() if not m.group().startswith("\n") else m.start()
        bounds.append((start, end))
        start = m.end()
    bounds.append((start, len(text)))
    out = []
    for s, e in bounds:
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if s < e:
            out.append((s, e))
    return out
