"""Serving: the Label Studio ML backend (``ie-serve``): predictions for tasks, retraining."""
