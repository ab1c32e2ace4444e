"""Scores and reports: span/relation/event metrics, baselines, cross-validation, report files."""
