"""Structured logs of the service: one JSON object per line, through each module's stdlib logger.

Only ids, counts, lengths, durations and statuses go in; never a token, a password or article text.
Formatting and handlers belong to the entry point (``ie-serve``); library code only emits.
"""

from __future__ import annotations

import json
import logging
from typing import Any


def log_event(logger: logging.Logger, event: str, level: int = logging.INFO, **fields: Any) -> None:
    """``{"event": event, **fields}`` as one JSON line (``default=str`` for odd values)."""
    if logger.isEnabledFor(level):
        logger.log(level, json.dumps({"event": event, **fields}, ensure_ascii=False, default=str))
