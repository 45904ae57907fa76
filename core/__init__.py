"""Easel engine: pipelines, models and image I/O. Never imports Qt."""
