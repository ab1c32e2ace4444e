"""Predicted documents to strike and casualty events: counts, names, dates, assembly, extraction."""
