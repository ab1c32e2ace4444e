"""Conflict-event extraction from Arabic news: Label Studio data, a joint NER + relation model, events."""

__version__ = "0.1.0"
